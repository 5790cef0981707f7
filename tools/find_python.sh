# Sourced by the launch scripts here (ROOT set to the repository): the Python
# they run is $PYTHON if set, else the project's environment .venv/bin/python
# when it exists, else the first python on PATH.
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then
        PYTHON="$ROOT/.venv/bin/python"
    else
        PYTHON=python
    fi
fi
