# The Airflow image docker-compose.yaml runs: the official image plus this project's pinned
# dependencies. The code (dags/, plugins/, include/) and the demo's simulator/ are mounted by
# docker-compose.yaml, not copied in.
#
# Same Airflow as requirements.txt pins, on Python 3.11: constraints.txt was resolved there.
FROM apache/airflow:3.3.2-python3.11

# The official pattern (docs "Building the image"): install as the airflow user, and name
# apache-airflow itself so that pip can neither upgrade nor downgrade it.
USER airflow
COPY requirements.txt constraints.txt /
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -r /requirements.txt -c /constraints.txt
