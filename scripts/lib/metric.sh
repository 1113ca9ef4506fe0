# Sourced by the bench scripts. metric NAME PORT [ABSENT]: the value of the first series of
# family NAME on the relay's operations port PORT, or ABSENT (default 0) when it has none.
metric() {
  python3 - "$1" "$2" "${3:-0}" <<'PY'
import sys, urllib.request
name, port, absent = sys.argv[1], sys.argv[2], sys.argv[3]
for line in urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode().splitlines():
    if line.split(" ")[0] == name:
        print(line.split(" ")[-1]); break
else:
    print(absent)
PY
}
