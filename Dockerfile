# The twin's web service: daphne serving Django and Socket.IO.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# A throwaway key under DEBUG, so no key is baked into the image (var/ is not copied either).
RUN DEBUG=true SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["sh", "-c", "python manage.py migrate --noinput && python -m twinsite.serve -b 0.0.0.0 -p 8000"]
