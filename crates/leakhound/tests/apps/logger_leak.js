'use strict';
// A logger made per request, winston-style with `handleExceptions`: each logger has a
// bound method per log level, a listener of its own and a transport, and registers two
// handlers on one long-lived emitter (as winston does on `process`): a bound exception
// handler and a flush closure. They keep the whole logger. One holder (the emitter's
// listener array), two listeners per request, many objects of other classes with them.
const { EventEmitter } = require('events');
const { listen } = require('./common');

const LEVELS = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'];
const crashes = new EventEmitter();
crashes.setMaxListeners(0);

class Transport {
  constructor(name) {
    this.name = name;
    this.lines = [];
  }
  write(line) {
    if (this.lines.length < 2) this.lines.push(line);
  }
}

class RequestLogger extends EventEmitter {
  constructor(id) {
    super();
    this.id = id;
    this.transport = new Transport('console');
    for (const level of LEVELS) this[level] = this.log.bind(this, level);
    this.on('logged', function onLogged(level) {
      this.last = level;
    });
    const transport = this.transport;
    // The leak: two handlers per logger on a long-lived emitter, never removed.
    crashes.on('uncaughtException', function flushOnCrash() {
      transport.write('crash');
    });
    crashes.on('uncaughtException', this.handleException.bind(this));
  }
  log(level, msg) {
    this.transport.write(level + ' ' + msg);
    this.emit('logged', level);
  }
  handleException(err) {
    this.error(String(err));
  }
}

let next = 0;
listen((req, res) => {
  const logger = new RequestLogger(next++);
  logger.info('GET ' + req.url);
  res.end('ok');
}, 'logger-leak');
