// Preloaded (node --import) by tests/conformance/run.py into the suite's origin server and CLI:
// - the origin's server.listen(port) would bind every interface; this keeps it on loopback;
// - it exits when the process that started it is gone, so a killed run leaves nothing behind.
import net from 'node:net'

const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  if (args.length >= 1 && (typeof args[0] === 'number' || typeof args[0] === 'string') &&
      typeof args[1] !== 'string') {
    return listen.call(this, args[0], '127.0.0.1', ...args.slice(1))
  }
  return listen.apply(this, args)
}

const parent = Number(process.env.CONFORMANCE_PARENT_PID || 0)
if (parent > 0) {
  setInterval(() => {
    try {
      process.kill(parent, 0)
    } catch {
      process.exit(0)
    }
  }, 1000).unref()
}
