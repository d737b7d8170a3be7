#!/usr/bin/env bash
# Fuzzes the firmware core's inbound-message handler (commands and the OTA upgrade message, and the
# shell's OTA events) (bench/firmware/fuzz_inbound.c) and the thing-model engine over the every-type test
# model (bench/firmware/fuzz_thing.c) with libFuzzer
# under AddressSanitizer + UndefinedBehaviorSanitizer, SECONDS each, and prints libFuzzer's
# final figures. Not part of scripts/test. Installs clang and its libFuzzer runtime when missing.
#   bench/firmware_fuzz.sh [SECONDS]   (default 60)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
need=()
command -v clang >/dev/null || need+=(clang)
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || need+=(libclang-rt-14-dev)
dpkg-query -W -f='${Status}' libcjson-dev 2>/dev/null | grep -q "ok installed" || need+=(libcjson-dev)
dpkg-query -W -f='${Status}' libmbedtls-dev 2>/dev/null | grep -q "ok installed" || need+=(libmbedtls-dev)
if ((${#need[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
comp="$here/firmware/components"
clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I"$comp/aliyun_auth/include" -I"$comp/aliyun_link/include" -I"$comp/aliyun_hash" -I/usr/include/cjson \
    "$here/bench/firmware/fuzz_inbound.c" "$comp"/aliyun_auth/*.c "$comp"/aliyun_link/*.c \
    "$comp/aliyun_hash/aliyun_hash_hmac.c" "$comp/aliyun_hash/aliyun_hash_mbedtls.c" \
    -lcjson -lmbedcrypto -o "$work/fuzz_inbound"

corpus="$work/corpus"
mkdir -p "$corpus"
# Seeds: byte 0 picks the topic (0: property set, 1: setled, 2: another topic), the rest is the payload.
printf '\x00{"id":"1","version":"1.0","params":{"LightSwitch":1},"method":"thing.service.property.set"}' >"$corpus/set"
printf '\x01{"dn":"dev1","s":1}' >"$corpus/setled"
printf '\x01{"dn":"dev2","s":0}' >"$corpus/other-device"
printf '\x00{"id":"7","params":[[[[[[[1]]]]]]]}' >"$corpus/nested"
# OTA: byte 0 = 3 is the upgrade topic; 0xe0 runs an accepted update through the shell's events.
printf '\x03{"code":"1000","data":{"size":4096,"sign":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","signMethod":"SHA256","md5":"","url":"https://oss.example.com/fw.bin","version":"2.0.0","module":"default","extData":{}},"id":1,"message":"success"}' >"$corpus/upgrade"
printf '\x03{"code":"1000","data":{"size":10,"sign":"0123456789abcdef0123456789abcdef","signMethod":"Md5","url":"http://h/x","version":"1.0.0"}}' >"$corpus/upgrade-refused"
printf '\xe0\x00\x10\x01\x00\x00\xff\x02\x00\x01\x00\x03\xe89f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08' >"$corpus/ota-events"

echo "fuzzing the inbound-message handler for ${seconds} s"
mkdir -p "$here/out"
set +e
"$work/fuzz_inbound" -max_total_time="$seconds" -max_len=2200 -print_final_stats=1 -artifact_prefix="$here/out/" \
    "$corpus" >"$work/log" 2>&1
status=$?
set -e
grep -E '^(stat::|Done)|ERROR|SUMMARY|artifact' "$work/log" || true
if ((status != 0)); then
    tail -40 "$work/log"
    echo "firmware_fuzz: the fuzzer found a failure (exit $status); the input is under out/" >&2
fi
if ((status != 0)); then
    exit "$status"
fi

"$here/.venv/bin/provision" tsl render --tsl "$here/tests/tsl/every_type.json" --out "$work/thing_model" >/dev/null
clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I"$comp/aliyun_link/include" -I"$work/thing_model" -I/usr/include/cjson \
    "$here/bench/firmware/fuzz_thing.c" "$work/thing_model/thing_model.c" "$comp/aliyun_link/alink_thing.c" \
    "$comp/aliyun_link/alink_json.c" \
    "$comp/aliyun_link/alink_status.c" -lcjson -lm -o "$work/fuzz_thing"
thing_corpus="$work/thing_corpus"
mkdir -p "$thing_corpus"
printf '\x00{"id":"1","params":{"Level":2,"Location":{"Lat":1,"Lon":2,"Name":"a"},"Points":[{"X":1,"Y":2}]}}' \
    >"$thing_corpus/set"
printf '\x00{"id":"2","params":{"Tags":["ab","c"],"Since":"1700000000000","Ratio":0.25}}' >"$thing_corpus/set2"
printf '\x03{"id":"3","params":{"Channel":1}}' >"$thing_corpus/measure"
printf '\x1e{"Lat":1.5,"Lon":-2,"Name":"ab"}' >"$thing_corpus/value-location"
printf '\x02-10' >"$thing_corpus/value-level"
echo "fuzzing the thing-model engine for ${seconds} s"
set +e
"$work/fuzz_thing" -max_total_time="$seconds" -max_len=1200 -print_final_stats=1 -artifact_prefix="$here/out/thing-" \
    "$thing_corpus" >"$work/thing_log" 2>&1
status=$?
set -e
grep -E '^(stat::|Done)|ERROR|SUMMARY|artifact' "$work/thing_log" || true
if ((status != 0)); then
    tail -40 "$work/thing_log"
    echo "firmware_fuzz: the fuzzer found a failure in the thing-model engine (exit $status); the input is under out/" >&2
fi
exit "$status"
