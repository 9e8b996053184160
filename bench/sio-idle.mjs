// Idle memory of Socket.IO connections: opens N WebSocket connections to a Socket.IO
// endpoint, joins namespace "/" on each (the Engine.IO handshake, "40", the CONNECT reply),
// answers the server's pings, holds them idle, and reports the server's RSS growth per
// connection (VmRSS from /proc/<pid>/status before and after).
//
//   node bench/sio-idle.mjs --url ws://127.0.0.1:8080/echo.io/ --pid $(pidof sluice) -c 5000
//
// Options: -c N connections (default 5000), --idle SECONDS held idle before the second
// sample (default 5), --query STRING appended to the handshake URL (a ?token=...).
import fs from 'node:fs';
import WebSocket from 'ws';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const url = opt('--url', 'ws://127.0.0.1:8080/echo.io/');
const pid = Number(opt('--pid', 0));
const n = Number(opt('-c', 5000));
const idleS = Number(opt('--idle', 5));
const query = opt('--query', '');

function rssKiB() {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Number(m[1]);
}

function open() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}?EIO=4&transport=websocket${query}`, { perMessageDeflate: false });
    let joined = false;
    ws.on('message', (data) => {
      const s = data.toString();
      if (s === '2') ws.send('3');
      else if (s[0] === '0') ws.send('40');
      else if (s.startsWith('40') && !joined) {
        joined = true;
        resolve(ws);
      }
    });
    ws.on('error', reject);
    ws.on('close', () => { if (!joined) reject(new Error('closed before joining')); });
  });
}

const before = rssKiB();
const sockets = [];
const t0 = Date.now();
for (let i = 0; i < n; i += 200) {
  const batch = [];
  for (let j = i; j < Math.min(n, i + 200); j++) batch.push(open());
  sockets.push(...(await Promise.all(batch)));
}
const connectS = (Date.now() - t0) / 1000;
await new Promise((r) => setTimeout(r, idleS * 1000));
const after = rssKiB();
const open_ = sockets.filter((s) => s.readyState === WebSocket.OPEN).length;
const perConn = ((after - before) * 1024) / n;
console.log(JSON.stringify({
  connections: n, still_open: open_, connect_s: connectS, idle_s: idleS,
  rss_before_kib: before, rss_after_kib: after, rss_bytes_per_connection: Math.round(perConn),
}));
sockets.forEach((s) => s.terminate());
