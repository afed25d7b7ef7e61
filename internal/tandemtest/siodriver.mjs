// siodriver: drives official socket.io-client sockets for Go tests.
//
// It reads one JSON command per line on stdin and writes one JSON line per
// reply or event on stdout:
//   {"id":1,"op":"open","sock":"a","url":"http://127.0.0.1:1234","cookie":"k=v",
//    "origin":"http://x","transports":["websocket"],"reconnect":false,"jar":false}
//   {"id":2,"op":"emit","sock":"a","event":"incr","args":[],"ack":true,"timeout":5000}
//   {"id":3,"op":"state","sock":"a"}     -> transport, connected, cookies (jar)
//   {"id":4,"op":"close","sock":"a"}
//   {"id":6,"op":"cookie","sock":"a","cookie":"k=v2"} -> the Cookie of its next connections
//   {"id":5,"op":"ping"}                 -> once the client is loaded
// Replies: {"id":N,"ok":true,...} or {"id":N,"error":"..."}.
// Events:  {"sock":"a","event":"connect","args":[...]}, for lifecycle events
// (connect, disconnect, connect_error, reconnect_attempt, transport) and for
// every event the server emits.
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const sockets = new Map();
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const event = (sock, name, args) => out({ sock, event: name, args: args.map(plain) });

function plain(v) {
  if (v instanceof Error) return { message: v.message, description: String(v.description ?? ""), data: v.data ?? null };
  return v;
}

function open(cmd) {
  const headers = {};
  if (cmd.cookie) headers.cookie = cmd.cookie;
  if (cmd.origin) headers.origin = cmd.origin;
  const s = io(cmd.url, {
    path: cmd.path || "/socket.io/",
    forceNew: true,
    transports: cmd.transports || ["polling", "websocket"],
    reconnection: !!cmd.reconnect,
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
    timeout: 5000,
    withCredentials: !!cmd.jar,
    extraHeaders: headers,
  });
  sockets.set(cmd.sock, s);
  s.on("connect", () => {
    event(cmd.sock, "connect", []);
    s.io.engine.once("upgrade", (t) => event(cmd.sock, "transport", [t.name]));
  });
  s.on("disconnect", (reason, details) => event(cmd.sock, "disconnect", [reason, plain(details ?? null)]));
  s.on("connect_error", (err) => event(cmd.sock, "connect_error", [err]));
  s.io.on("reconnect_attempt", (n) => event(cmd.sock, "reconnect_attempt", [n]));
  s.onAny((name, ...args) => event(cmd.sock, name, args));
  return {};
}

function state(s) {
  const engine = s.io.engine;
  const cookies = {};
  if (engine && engine._cookieJar) {
    for (const [name, c] of engine._cookieJar.cookies) cookies[name] = c.value;
  }
  return { connected: s.connected, transport: engine?.transport?.name ?? "", cookies };
}

async function handle(cmd) {
  if (cmd.op === "ping") return {};
  if (cmd.op === "open") return open(cmd);
  const s = sockets.get(cmd.sock);
  if (!s) throw new Error(`no socket ${cmd.sock}`);
  switch (cmd.op) {
    case "emit":
      if (cmd.ack) {
        const ack = await s.timeout(cmd.timeout || 5000).emitWithAck(cmd.event, ...(cmd.args || []));
        return { ack: [ack] };
      }
      s.emit(cmd.event, ...(cmd.args || []));
      return {};
    case "emitRaw":
      // a packet the typed API would not send: written straight to the engine
      s.io.engine.write(cmd.data);
      return {};
    case "state":
      return state(s);
    case "cookie":
      // What a browser does when a response sets a new cookie: the tab's
      // next connection (a reconnect) carries it.
      s.io.opts.extraHeaders = { ...(s.io.opts.extraHeaders || {}), cookie: cmd.cookie };
      return {};
    case "close":
      s.disconnect();
      sockets.delete(cmd.sock);
      return {};
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    out({ error: `bad command: ${e.message}` });
    return;
  }
  handle(cmd).then(
    (res) => out({ id: cmd.id, ok: true, ...res }),
    (err) => out({ id: cmd.id, error: err.message }),
  );
});
rl.on("close", () => {
  for (const s of sockets.values()) s.disconnect();
  process.exit(0);
});
