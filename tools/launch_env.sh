# Sourced by the launch scripts here, with ROOT set to the repository.
# The Python they run: $PYTHON if set, else the project's environment
# .venv/bin/python when it exists, else the first python on PATH.
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then
        PYTHON="$ROOT/.venv/bin/python"
    else
        PYTHON=python
    fi
fi

# require_count NAME VALUE: stop unless VALUE is a positive integer.
require_count() {
    case "$2" in
        '' | *[!0-9]* | 0 | 0*)
            echo "$1 must be a positive number of processes, got '$2'" >&2
            exit 2 ;;
    esac
}
