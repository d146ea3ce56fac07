'use strict';
// node_redis.js - node-redis (npm "redis", or an alias of an older major such
// as "redis5") behind the small interface scenario.js drives.
//
// The client is made as its README shows, createClient({ url }), so every
// option keeps its default; a variant may set only RESP (2 or 3). node-redis
// 6 defaults to RESP3 (HELLO 3 with AUTH in it), node-redis 5 to RESP2 (AUTH).
// Its subscribe calls resolve with nothing (the confirmation count is matched
// internally, not returned), and a pattern listener is called with the
// message and the channel: the pattern is the one the listener was given for.

const DEFAULT_RESP = { redis: 3, redis5: 2 };

exports.make = function make(pkg, resp) {
  const { createClient } = require(pkg);
  const protocol = resp === 'default' ? DEFAULT_RESP[pkg] : Number(resp);

  function options(port, password) {
    const opts = { url: `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}` };
    if (resp !== 'default') opts.RESP = protocol;
    return opts;
  }

  return {
    protocol,
    // What this client returns for PING and PING <arg> in subscribe mode:
    // RESP2's ["pong", arg] array comes back as arg or "pong", RESP3's +PONG
    // as "PONG".
    pong: protocol === 3 ? 'PONG' : 'pong',
    pongWith: (arg) => arg,

    async connect(port, password, onError) {
      const client = createClient(options(port, password));
      client.on('error', onError);
      await client.connect();
      return {
        subscribe: async (channel, onMessage) => {
          await client.subscribe(channel, (message, ch) => onMessage(ch, message));
          return null;
        },
        psubscribe: async (pattern, onPmessage) => {
          await client.pSubscribe(pattern, (message, ch) => onPmessage(pattern, ch, message));
          return null;
        },
        unsubscribe: async (channel) => {
          await client.unsubscribe(channel);
          return null;
        },
        punsubscribe: async (pattern) => {
          await client.pUnsubscribe(pattern);
          return null;
        },
        ping: (arg) => (arg === undefined ? client.ping() : client.ping(arg)),
        publish: (channel, message) => client.publish(channel, message),
        close: () => client.destroy(),
      };
    },

    // Connects with a password the server refuses; resolves with the first
    // error the client reports, then stops the client (it would otherwise
    // reconnect and retry for ever).
    refused(port, password) {
      const client = createClient(options(port, password));
      return new Promise((resolve) => {
        client.on('error', (err) => {
          client.destroy();
          resolve(err);
        });
        client.connect().catch(() => {});
      });
    },
  };
};
