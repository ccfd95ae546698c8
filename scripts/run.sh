#!/usr/bin/env bash
# make run: a local Annexa in one command. Starts annexa-server on its
# embedded SQLite in .run/server, enrols an agent on this machine (state in
# .run/agent), runs one collection, prints the fleet's compliance summary,
# then keeps the server and the agent running until Ctrl-C.
#
#   ANNEXA_LISTEN=127.0.0.1:8443   where the server listens
#   ANNEXA_RUN_ONCE=1              print the summary and stop (tests, CI)
#   ANNEXA_RUN_DIR, ANNEXA_BIN     where state goes (.run) and the binaries are (bin)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
run=${ANNEXA_RUN_DIR:-$top/.run}
mkdir -p "$run"
listen=${ANNEXA_LISTEN:-127.0.0.1:8443}
url=https://$listen
bin=${ANNEXA_BIN:-$top/bin}

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# The port first: a busy one is said plainly, before anything starts.
host=${listen%:*}; port=${listen##*:}
if (exec 3<>"/dev/tcp/${host#[}/${port}") 2>/dev/null; then
  echo "make run: $listen is in use (another Annexa, or something else): set ANNEXA_LISTEN, e.g. ANNEXA_LISTEN=127.0.0.1:8444 make run" >&2
  exit 1
fi
# Each start logs afresh: an old log (and whatever it held) is not replayed.
: >"$run/server.log"
chmod 600 "$run/server.log"
"$bin/annexa-server" serve --listen "$listen" --data "$run/server" --log-level warn 2>>"$run/server.log" &
pids+=($!)
for _ in $(seq 1 100); do
  [ -s "$run/server/admin.token" ] && [ -s "$run/server/tls.crt" ] && \
    curl -fsS --cacert "$run/server/tls.crt" "$url/readyz" >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "annexa-server failed to start:" >&2; tail -20 "$run/server.log" >&2; exit 1; }
  sleep 0.1
done
export ANNEXA_SERVER=$url ANNEXA_CA=$run/server/tls.crt
export ANNEXA_TOKEN=$(cat "$run/server/admin.token")

cat > "$run/agent.yaml" <<YAML
server: $url
state_dir: $run/agent
log_level: warn
defaults:
  interval: 1h
  jitter: 0s
YAML
if [ ! -s "$run/agent/agent.json" ]; then
  token=$("$bin/annexa" token create --role enroll --name "make run" --max-uses 1 --label env=local 2>/dev/null)
  "$bin/annexa-agent" enroll --server "$url" --token "$token" --ca "$run/server/tls.crt" --config "$run/agent.yaml"
fi
"$bin/annexa-agent" run --once --config "$run/agent.yaml" >/dev/null

echo
echo "== Hosts"
"$bin/annexa" hosts
echo
echo "== Annex A controls with automated evidence"
"$bin/annexa" controls --covered
echo
echo "== This host's checks, as they stand now (every one, failing and error included)"
"$bin/annexa" host "$(sed -n 's/.*"agent_id": "\(.*\)".*/\1/p' "$run/agent/agent.json")" || true
cat <<TXT

Annexa is running:
  dashboard:    $url/   (sign in with the admin token: cat $run/server/admin.token;
                the certificate is self-signed: trust $run/server/tls.crt or accept it once)
  API:          $url/v1/   (TLS certificate: $run/server/tls.crt)
  metrics:      $url/metrics
  admin token:  $run/server/admin.token
  server.pub:   $run/server/server.pub   (what auditors pin)

Try:
  export ANNEXA_SERVER=$url ANNEXA_CA=$run/server/tls.crt ANNEXA_TOKEN=\$(cat $run/server/admin.token)
  bin/annexa control 8.5
  bin/annexa-agent status --config $run/agent.yaml
TXT
if [ -n "${ANNEXA_RUN_ONCE:-}" ]; then
  exit 0
fi
"$bin/annexa-agent" run --config "$run/agent.yaml" 2>>"$run/agent.log" &
pids+=($!)
echo "Server and agent running; Ctrl-C stops both."
wait "${pids[0]}"
