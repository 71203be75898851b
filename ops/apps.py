from django.apps import AppConfig


class OpsConfig(AppConfig):
    """The operator's side: health and readiness, Prometheus metrics, request ids and logs, API docs.

    The top layer: it may read every app below it, and none of them imports it.
    Domain apps define their own Prometheus metrics; ops only exposes the registry.
    """

    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from ops.prometheus import multiprocess_exit_register

        multiprocess_exit_register()
