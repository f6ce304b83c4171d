"""The production profile: its settings, a check of its services, and the nginx front.

`make run PROFILE=production` (stack/launch.py) runs several Rasa server processes that share
their state: conversations in PostgreSQL (SQL tracker store), conversation locks in Redis
(Redis lock store), both configured in profiles/production/endpoints.yml from the settings
below. One nginx in front of them is the only public address: it sends each conversation to
one of the Rasa processes (a hash of the message's sender) and lets through only the chat (the
REST channel) and the health check; the HTTP API (model upload, trackers, status) stays on the
internal addresses of the Rasa processes.

Settings come from the environment; anything not set there comes from the env file
($CLINIC_PRODUCTION_ENV_FILE, default profiles/production.env: untracked; copy
profiles/production.env.example).
"""
import os
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
ENDPOINTS = ROOT / "profiles" / "production" / "endpoints.yml"
ENV_EXAMPLE = ROOT / "profiles" / "production.env.example"

# name -> default (None: required). profiles/production.env.example documents each one.
SETTINGS: Dict[str, Optional[str]] = {
    "TRACKER_DB_HOST": None,
    "TRACKER_DB_PORT": "5432",
    "TRACKER_DB_NAME": None,
    "TRACKER_DB_USER": None,
    "TRACKER_DB_PASSWORD": "",
    "LOCK_STORE_HOST": None,
    "LOCK_STORE_PORT": "6379",
    "LOCK_STORE_DB": "0",
    "LOCK_STORE_PASSWORD": "",
    "LOCK_STORE_KEY_PREFIX": "clinic",
    "RASA_WORKERS": "2",
}

# The largest request body any endpoint accepts; Sanic (SANIC_REQUEST_MAX_SIZE) and nginx both
# enforce it. A chat message has at most max_message_chars characters (credentials.yml), and a
# client may send each as a 12-byte JSON escape ("\ud83d\ude00"): the limit leaves room for that
# (tests/e2e/test_security.py checks it).
REQUEST_MAX_BYTES = 128 * 1024


def env_file() -> Path:
    return Path(os.environ.get("CLINIC_PRODUCTION_ENV_FILE", ROOT / "profiles" / "production.env"))


def read_env_file(path: Path) -> Dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments skipped; optional quotes removed."""
    values = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip()
        if key.startswith("export "):
            key = key[len("export "):].strip()
        values[key] = value.strip().strip("'\"")
    return values


TRACKER_SETTINGS = [name for name in SETTINGS if name.startswith("TRACKER_DB_")]


def load_settings(path: Optional[Path] = None,
                  names: Optional[List[str]] = None) -> Dict[str, str]:
    """The production settings (or only `names`): the environment first, then the env file,
    then the defaults."""
    from_file = read_env_file(path or env_file())
    settings, missing = {}, []
    for name, default in SETTINGS.items():
        if names is not None and name not in names:
            continue
        value = os.environ.get(name, from_file.get(name, default))
        if value is None:
            missing.append(name)
        else:
            settings[name] = value
    if missing:
        raise SystemExit(
            f"The production profile needs {', '.join(missing)}: set them in the environment or "
            f"in {path or env_file()} (see {ENV_EXAMPLE.relative_to(ROOT)}).")
    return settings


def tracker_db_url(settings: Dict[str, str]):
    """The SQLAlchemy URL of the production tracker store."""
    from sqlalchemy.engine import URL

    return URL.create(
        "postgresql", username=settings["TRACKER_DB_USER"],
        password=settings.get("TRACKER_DB_PASSWORD") or None,
        host=settings["TRACKER_DB_HOST"], port=int(settings["TRACKER_DB_PORT"]),
        database=settings["TRACKER_DB_NAME"])


def create_database(name: str, **connect: Any) -> None:
    """Creates PostgreSQL database `name` unless it exists (psycopg2 `connect` arguments)."""
    import psycopg2

    try:
        psycopg2.connect(dbname=name, **connect).close()
        return
    except psycopg2.OperationalError:
        pass
    admin = psycopg2.connect(dbname="postgres", **connect)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    except psycopg2.errors.DuplicateDatabase:
        pass  # created meanwhile by a parallel run
    finally:
        admin.close()


def check_services(settings: Dict[str, str]) -> None:
    """Fails fast with a clear message when PostgreSQL or Redis is not reachable.

    (Rasa itself would retry the database forever, without saying why it does not start.)
    """
    import psycopg2
    import redis

    try:
        psycopg2.connect(
            host=settings["TRACKER_DB_HOST"], port=int(settings["TRACKER_DB_PORT"]),
            dbname=settings["TRACKER_DB_NAME"], user=settings["TRACKER_DB_USER"],
            password=settings.get("TRACKER_DB_PASSWORD") or None, connect_timeout=5,
        ).close()
    except psycopg2.Error as error:
        raise SystemExit(f"The tracker store's PostgreSQL is not reachable "
                         f"({settings['TRACKER_DB_HOST']}:{settings['TRACKER_DB_PORT']}, "
                         f"database {settings['TRACKER_DB_NAME']}): {str(error).strip()}")
    try:
        redis.Redis(host=settings["LOCK_STORE_HOST"], port=int(settings["LOCK_STORE_PORT"]),
                    db=int(settings["LOCK_STORE_DB"]),
                    password=settings.get("LOCK_STORE_PASSWORD") or None,
                    socket_connect_timeout=5).ping()
    except redis.RedisError as error:
        raise SystemExit(f"The lock store's Redis is not reachable "
                         f"({settings['LOCK_STORE_HOST']}:{settings['LOCK_STORE_PORT']}): {error}")


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None)
    if not found:
        raise SystemExit("The production profile needs nginx: run `make install-production` "
                         "(apt-get install nginx-light).")
    return found


def nginx_config(listen_port: int, backend_ports: List[int], log_dir: Path, run_dir: Path) -> str:
    """nginx.conf for the public address: the Rasa processes behind it, chat only.

    Routing: the messages of one conversation go to the same Rasa process (nginx hashes the
    `sender` of the JSON body), which then still holds its tracker in memory
    (clinic/tracker_cache.py) instead of rebuilding it from PostgreSQL. Only speed depends on
    it: any process answers any conversation correctly (the cache checks the database), a body
    nginx cannot read the sender from is spread at random, and when a process is down its
    conversations go to another one.

    Only the REST channel (POST /webhooks/rest/webhook and its CORS preflight, its health
    GET /webhooks/rest/) and
    Rasa's health check (GET /) are passed on; everything else (the HTTP API: /model,
    /status, /conversations, ...) gets a 404, and so does any URL with a query string (where an
    API token would be). The logs hold no query strings and no bodies.
    """
    backends = "\n".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;"
                         for port in backend_ports)
    tmp = run_dir / "nginx-tmp"
    name = f"front-{listen_port}"
    return f"""# Generated by stack/production.py for one run: edit that file, not this one.
daemon off;
worker_processes 1;
pid {run_dir}/{name}.pid;
error_log {log_dir}/{name}-error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    server_tokens off;
    log_format clinic '$time_iso8601 $status $request_method $uri $request_time '
                      '$upstream_addr $upstream_status';
    access_log {log_dir}/{name}-access.log clinic;

    client_max_body_size {REQUEST_MAX_BYTES};
    client_body_buffer_size {REQUEST_MAX_BYTES};
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;

    # The body is read whole into memory before the upstream is chosen (client_body_buffer_size).
    map $request_body $conversation {{
        '~"sender"\\s*:\\s*"(?<sender>[^"]+)"' $sender;
        default $request_id;
    }}

    upstream rasa {{
        hash $conversation consistent;
{backends}
        keepalive 32;
    }}

    server {{
        listen 127.0.0.1:{listen_port};

        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_read_timeout 60s;
        # A Rasa process that refuses the connection is skipped; a message it already
        # received is never sent twice (nginx does not resend a POST).
        proxy_next_upstream error timeout;

        # No public endpoint takes a query string: refusing them here (with `return`, which
        # logs nothing) keeps an API token sent by mistake out of nginx's error log too.
        if ($args) {{ return 404; }}

        # Rasa's health check
        location = / {{
            if ($request_method !~ ^(GET|HEAD)$) {{ return 405; }}
            proxy_pass http://rasa;
        }}
        # The chat: the REST channel and its health check
        location = /webhooks/rest/webhook {{
            if ($request_method !~ ^(POST|OPTIONS)$) {{ return 405; }}
            proxy_pass http://rasa;
        }}
        location = /webhooks/rest/ {{
            if ($request_method !~ ^(GET|HEAD)$) {{ return 405; }}
            proxy_pass http://rasa;
        }}
        # Everything else, in particular the HTTP API, is not public.
        location / {{
            return 404;
        }}
    }}
}}
"""


def write_nginx_config(listen_port: int, backend_ports: List[int], log_dir: Path,
                       run_dir: Path) -> Path:
    """Writes the config next to the logs (front-PORT.nginx.conf); returns its path."""
    (run_dir / "nginx-tmp").mkdir(parents=True, exist_ok=True)
    path = log_dir / f"front-{listen_port}.nginx.conf"
    path.write_text(nginx_config(listen_port, backend_ports, log_dir, run_dir))
    return path
