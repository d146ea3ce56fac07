'use strict';
// ioredis.js - ioredis (npm "ioredis", or an alias of an older major such as
// "ioredis5") behind the small interface scenario.js drives.
//
// The client is made as its README shows, new Redis(port, host, { password }),
// so every other option keeps its default; a variant may set only protocol
// (2 or 3, ioredis 6 and later). ioredis 6 defaults to RESP3 (HELLO 3 with
// AUTH in it, falling back to RESP2 when HELLO is unknown); ioredis 5 speaks
// RESP2 only. Both send INFO before the first command (enableReadyCheck).
// Subscribe calls resolve with the confirmation's count; a pattern message
// comes with its pattern, channel and message.

const DEFAULT_PROTOCOL = { ioredis: 3, ioredis5: 2 };

exports.make = function make(pkg, resp) {
  const Redis = require(pkg);
  const protocol = resp === 'default' ? DEFAULT_PROTOCOL[pkg] : Number(resp);

  function create(port, password) {
    const opts = { password };
    if (resp !== 'default') opts.protocol = protocol;
    return new Redis(port, '127.0.0.1', opts);
  }

  return {
    protocol,
    // What this client returns for PING and PING <arg> in subscribe mode:
    // RESP2's ["pong", arg] array as it is, RESP3's +PONG as "PONG".
    pong: protocol === 3 ? 'PONG' : ['pong', ''],
    pongWith: (arg) => (protocol === 3 ? arg : ['pong', arg]),

    // Resolves once the client is ready (connected, authenticated, its INFO
    // check passed); rejects with the error that kept it from being ready.
    async connect(port, password, onError) {
      const client = create(port, password);
      await new Promise((resolve, reject) => {
        const notReady = (err) => {
          client.disconnect();
          reject(err);
        };
        client.once('error', notReady);
        client.once('ready', () => {
          client.off('error', notReady);
          resolve();
        });
      });
      client.on('error', onError);
      const channelListeners = new Map();
      const patternListeners = new Map();
      client.on('message', (channel, message) => {
        const listener = channelListeners.get(channel);
        if (listener) listener(channel, message);
      });
      client.on('pmessage', (pattern, channel, message) => {
        const listener = patternListeners.get(pattern);
        if (listener) listener(pattern, channel, message);
      });
      return {
        subscribe: (channel, onMessage) => {
          channelListeners.set(channel, onMessage);
          return client.subscribe(channel);
        },
        psubscribe: (pattern, onPmessage) => {
          patternListeners.set(pattern, onPmessage);
          return client.psubscribe(pattern);
        },
        unsubscribe: (channel) => client.unsubscribe(channel),
        punsubscribe: (pattern) => client.punsubscribe(pattern),
        ping: (arg) => (arg === undefined ? client.ping() : client.ping(arg)),
        publish: (channel, message) => client.publish(channel, message),
        close: () => client.disconnect(),
      };
    },

    // Connects with a password the server refuses; resolves with the first
    // error the client reports, then stops the client (it would otherwise
    // reconnect and retry for ever).
    refused(port, password) {
      const client = create(port, password);
      return new Promise((resolve) => {
        client.on('error', (err) => {
          client.disconnect();
          resolve(err);
        });
      });
    },
  };
};
