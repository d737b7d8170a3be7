// Drives mqtt.js (npm "mqtt", the Node.js client of Alibaba's blog) as a device; run by the tests with node.
// stdin: the first line is {"url", "ca_file", "options"} (options go to mqtt.connect: clientId, username, password,
// will, ...; the password travels on stdin, never in argv), every later line one command:
//   {"do": "subscribe", "topic", "qos"}           -> {"event": "suback", "granted": [..]}
//   {"do": "publish", "topic", "payload", "qos", "retain", "repeat"} -> {"event": "puback"|"pub_error", ...}
//   {"do": "end"}                                   -> closes and exits
// stdout: one JSON object a line: connect, message, error, close, suback, puback.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { createRequire } from "node:module";

// mqtt.js lives in build/interop/node (prepare.sh), not next to this file, and ESM ignores NODE_PATH.
const mqtt = createRequire(process.env.INTEROP_NODE_DIR + "/")("mqtt");

const emit = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
const lines = createInterface({ input: process.stdin });
let client = null;

lines.on("line", (line) => {
  const message = JSON.parse(line);
  if (client === null) {
    start(message);
    return;
  }
  run(message);
});
lines.on("close", () => client?.end(true));

function start(config) {
  client = mqtt.connect(config.url, {
    ca: readFileSync(config.ca_file),
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 10000,
    keepalive: 60,
    clean: true,
    ...config.options,
  });
  client.on("connect", (connack) => emit("connect", { returnCode: connack.returnCode ?? 0 }));
  client.on("message", (topic, payload, packet) =>
    emit("message", { topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain }),
  );
  client.on("error", (error) => emit("error", { code: error.code ?? null, message: error.message }));
  client.on("close", () => emit("close"));
}

function run(command) {
  if (command.do === "subscribe") {
    client.subscribe(command.topic, { qos: command.qos ?? 1 }, (error, granted) =>
      emit("suback", { error: error?.message ?? null, granted: (granted ?? []).map((g) => g.qos) }),
    );
  } else if (command.do === "publish") {
    const repeat = command.repeat ?? 1;
    for (let index = 0; index < repeat; index++) {
      const payload = command.payload.replaceAll("{index}", String(index));
      client.publish(command.topic, payload, { qos: command.qos ?? 1, retain: command.retain ?? false }, (error) =>
        emit(error ? "pub_error" : "puback", { index, message: error?.message ?? null }),
      );
    }
  } else if (command.do === "end") {
    client.end(false, () => process.exit(0));
  }
}
