#!/usr/bin/env bash
# Start a local MariaDB for Rover's MySQL datastore and its tests. Safe to run again:
# installs the server only if missing, starts it only if not answering, and (re)creates the
# `rover` user and database. Progress goes to stderr; the last line of stdout is the store URL:
#   export ROVER_TEST_MYSQL_URL=$(bash deploy/local/mariadb.sh | tail -1)
set -euo pipefail

readonly DEADLINE_SECONDS=60
readonly URL='mysql://rover:rover@127.0.0.1:3306/rover'

say() { echo "mariadb.sh: $*" >&2; }

# Root talks to the server over the unix socket (unix_socket auth), so run as root or via sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v mariadb >/dev/null 2>&1 || [ ! -x /usr/sbin/mariadbd ]; then
  say "installing mariadb-server"
  as_root apt-get update >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y mariadb-server >&2
fi

server_answers() { as_root mariadb -e 'select 1' >/dev/null 2>&1; }

if server_answers; then
  say "server already running"
else
  if [ ! -d /var/lib/mysql/mysql ]; then
    say "initialising data directory /var/lib/mysql"
    as_root mariadb-install-db --user=mysql --datadir=/var/lib/mysql >&2
  fi
  say "starting mariadbd"
  as_root mkdir -p /run/mysqld
  as_root chown mysql:mysql /run/mysqld
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  deadline=$((SECONDS + DEADLINE_SECONDS))
  until server_answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "mariadbd did not answer within ${DEADLINE_SECONDS}s; see /var/log/mysql/ or run 'mariadbd --user=mysql' in a terminal to read its errors"
      exit 1
    fi
    sleep 0.5
  done
  say "server is up"
fi

# Tests create and drop their own databases, hence ALL on *.*; this is a local dev account.
as_root mariadb <<'SQL'
CREATE USER IF NOT EXISTS 'rover'@'127.0.0.1' IDENTIFIED BY 'rover';
CREATE USER IF NOT EXISTS 'rover'@'localhost' IDENTIFIED BY 'rover';
ALTER USER 'rover'@'127.0.0.1' IDENTIFIED BY 'rover';
ALTER USER 'rover'@'localhost' IDENTIFIED BY 'rover';
GRANT ALL PRIVILEGES ON *.* TO 'rover'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO 'rover'@'localhost';
CREATE DATABASE IF NOT EXISTS rover CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
FLUSH PRIVILEGES;
SQL
say "user rover and database rover ready"

echo "$URL"
