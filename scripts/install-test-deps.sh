#!/usr/bin/env bash
# Installs what the tests need on Debian/Ubuntu: the real servers the integration
# and end-to-end tests start (InfluxDB 1.x), the MQTT clients nobody here wrote
# (mosquitto_pub, mosquitto_sub), Redis, openssl (the TLS tests make their own CA and
# certificates), chromium (the pages' tests), then the locked npm dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# influxdb: InfluxDB 1.x (v1 /write, InfluxQL); victoria-metrics: a server of the v2 write API;
# socat: serial lines (util-linux, for setpriv, kills them with their parent); mosquitto-clients: an MQTT client nobody here wrote;
# openssl: test certificates; libxml2-utils: xmllint, which checks every CAP 1.2 message against the OASIS schema;
# chromium: the browser the residents' page is tested in (driven by playwright-core);
# redis-server: the shared store of a cluster of brokers and cloud-sync workers (the tests start their own on a free port).
packages=(influxdb victoria-metrics socat util-linux mosquitto-clients openssl libxml2-utils chromium redis-server)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  # The influxdb and redis-server packages may try to start their own services; the tests start their own server.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

npm ci --no-audit --no-fund
