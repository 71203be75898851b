# The twin's web image: daphne serving Django and Socket.IO (python -m twinsite.serve).
# It does not migrate: docker-compose.yml runs `migrate` once, in a service of its own,
# before the replicas start (two replicas migrating at once would race).
#
# Base pinned by tag and by the digest of its multi-architecture index (as published
# for python:3.11.14-slim-bookworm); update both together.
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The runtime requirements only; the test tools stay out of the image.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

# The code belongs to root and is read-only to the server; it writes only under var/
# (collected static files, which compose shares with nginx through a volume).
# WITH_AGENT=true adds the reference agent (agent/), for the simulator's image only.
ARG WITH_AGENT=false
COPY . .
RUN if [ "$WITH_AGENT" = "true" ]; then pip install --no-cache-dir ./agent; fi \
    && groupadd --system --gid 10001 twin \
    && useradd --system --uid 10001 --gid twin --home-dir /app --no-create-home --shell /usr/sbin/nologin twin \
    && SECRET_KEY=collectstatic-at-build-time-only python manage.py collectstatic --noinput \
    && chown -R twin:twin var

# Numeric, so Kubernetes-style runAsNonRoot checks can verify it: 10001 is the twin user.
USER 10001:10001
EXPOSE 8000

# Ready: database reachable and migrated, channel layer reachable (/readyz).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]

CMD ["python", "-m", "twinsite.serve", "-b", "0.0.0.0", "-p", "8000"]
