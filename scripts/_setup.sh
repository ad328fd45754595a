# Shared set-up for scripts/test and scripts/demo: a virtual environment with the project
# installed, and (for the tests) PostgreSQL, Redis and RabbitMQ running on 127.0.0.1.
# Sourced, not executed.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

say() { printf 'limitflow: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root to run: $*"; return 1; fi
}

ensure_venv() {
  local want have python
  want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
  have="$(cat "$VENV/.limitflow-stamp" 2>/dev/null || true)"
  if [ -x "$PY" ] && [ "$want" = "$have" ]; then return 0; fi
  python="${PYTHON:-python3}"
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    say "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)"; return 1
  fi
  say "setting up the virtual environment in .venv (once)"
  [ -x "$PY" ] || "$python" -m venv "$VENV"
  "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$PY" -m pip install --quiet --disable-pip-version-check -e "$ROOT[dev]"
  echo "$want" > "$VENV/.limitflow-stamp"
}

apt_install() {
  say "installing $* with apt-get"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Tools some tests use (Chromium opens Flower; docker-compose checks docker-compose.yml):
# installed when missing. Not fatal: without them those tests skip, saying why.
ensure_test_tools() {
  local missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_install "${missing[@]}" || say "could not install ${missing[*]}: the tests that need them skip"
}

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

ensure_postgres() {
  pg_up && return 0
  local fresh=0 version
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    apt_install postgresql postgresql-client; fresh=1
  fi
  version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$version" ]; then
    version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
    as_root pg_createcluster "$version" main >/dev/null; fresh=1
  fi
  if [ "$fresh" = 1 ]; then
    # A cluster we just created: let local test connections in without a password.
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  say "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
    || as_root pg_ctlcluster "$version" main start
  for _ in $(seq 1 60); do pg_up && return 0; sleep 0.5; done
  say "PostgreSQL did not come up on 127.0.0.1:5432"; return 1
}

redis_up() {
  if command -v redis-cli >/dev/null; then
    [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]
  else
    (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null
  fi
}

ensure_redis() {
  redis_up && return 0
  command -v redis-server >/dev/null || apt_install redis-server
  say "starting Redis"
  mkdir -p /tmp/limitflow-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/limitflow-redis --logfile /tmp/limitflow-redis/redis.log
  for _ in $(seq 1 60); do redis_up && return 0; sleep 0.5; done
  say "Redis did not come up on 127.0.0.1:6379"; return 1
}

amqp_up() {
  # Answers, not merely listens: send the AMQP 0-9-1 header and expect a method frame (01).
  timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672 && printf "AMQP\0\0\011\001" >&3 &&
    head -c 1 <&3' 2>/dev/null | od -An -tx1 | grep -q 01
}

ensure_rabbitmq() {
  amqp_up && return 0
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  amqp_up && return 0  # the package's own start (where there is an init system) won
  say "starting RabbitMQ"
  as_root rabbitmq-server -detached
  # An Erlang node boots in a few seconds, longer on a cold disk.
  for _ in $(seq 1 120); do amqp_up && return 0; sleep 0.5; done
  say "RabbitMQ did not come up on 127.0.0.1:5672 (see /var/log/rabbitmq)"; return 1
}
