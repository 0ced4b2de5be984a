"""The deployment's generators: Kubernetes manifests derived from the services' shapes and schedules."""
