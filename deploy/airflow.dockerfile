# The Airflow image for docker-compose.yaml: the official image plus Airlock's requirements.
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir apache-airflow==3.3.2 \
      "$(grep '^apache-airflow-providers-docker' /tmp/requirements.txt)" \
      "$(grep '^docker==' /tmp/requirements.txt)" \
      apache-airflow-providers-celery
