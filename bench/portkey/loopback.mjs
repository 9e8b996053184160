// Preloaded into the Portkey gateway by scripts/bench.sh (node --import): its CLI takes
// only --port and listens on every interface, and prints "localhost:<port>" whatever port
// it got. This makes every server it starts listen on 127.0.0.1 only, and prints the
// address actually bound ("listening 127.0.0.1:PORT", on stderr) so that the script can
// use --port=0 and never race another process for a fixed port.
import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const cb = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
  let opts;
  if (args[0] !== null && typeof args[0] === 'object') opts = { ...args[0] };
  else opts = { port: args[0] === undefined ? 0 : Number(args[0]) };
  opts.host = '127.0.0.1';
  this.once('listening', () => {
    const a = this.address();
    process.stderr.write(`listening ${a.address}:${a.port}\n`);
  });
  return cb ? listen.call(this, opts, cb) : listen.call(this, opts);
};
