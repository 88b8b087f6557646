# The HTTP service (docs/service.md). Not built or tested here: no Docker on the development machines.
#   docker build -t spanjoint-service .
#   docker run -p 127.0.0.1:8080:8080 -v /path/to/model-best:/model:ro spanjoint-service
FROM python:3.11-slim
WORKDIR /app
# The CPU build of torch first, so that the package's pin does not pull CUDA packages.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY spacy_spanjoint ./spacy_spanjoint
RUN pip install --no-cache-dir ".[serve]"
ENV MODEL=/model
EXPOSE 8080
# Inside the container the service listens on every interface, so that the published port reaches it.
CMD ["sh", "-c", "exec python -m spacy_spanjoint serve-api \"$MODEL\" --host 0.0.0.0 --port 8080"]
