"""Where things run: the local single-node Kafka, compose and Kubernetes files for real deployments."""
