'use strict';
// query.js - node-redis (npm "redis", or "redis5") with its default options
// asks for last values without subscribing: GET, MGET, KEYS and SCAN (the
// client's scanIterator). test_node_clients.py seeds the values first
// (PUBLISHed ticks on tickd, SET keys on redis-server) and runs:
//
//   node query.js <package> <resp> <port> <password> <json of the seeded values>
//
// resp: "default" (the client's own choice) or 2 or 3. Prints each step and
// exits 0 when every assertion held, 1 on the first that did not.

const assert = require('node:assert/strict');

const [pkg, resp, portText, password, valuesJson] = process.argv.slice(2);
const values = JSON.parse(valuesJson);

let step = 'start';
function fail(err) {
  process.stdout.write(`FAILED at step "${step}": ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
}
setTimeout(() => fail(new Error('still running after 20000 ms')), 20000);

async function run() {
  const { createClient } = require(pkg);
  const opts = { url: `redis://:${encodeURIComponent(password)}@127.0.0.1:${portText}` };
  if (resp !== 'default') opts.RESP = Number(resp);
  const client = createClient(opts);
  const errors = [];
  client.on('error', (err) => errors.push(err.message));
  await client.connect();
  const names = Object.keys(values).sort();

  step = 'GET answers each last value, null for a channel without one';
  for (const name of names) assert.equal(await client.get(name), values[name]);
  assert.equal(await client.get('trade.NOPE'), null);

  step = 'MGET answers them in order';
  assert.deepEqual(await client.mGet([...names, 'quote.NOPE']), [...names.map((n) => values[n]), null]);

  step = 'KEYS lists the channels with a last value';
  assert.deepEqual((await client.keys('*')).sort(), names);
  assert.deepEqual((await client.keys('trade.*')).sort(), names.filter((n) => n.startsWith('trade.')));

  step = 'scanIterator visits every key';
  const seen = new Set();
  for await (const batch of client.scanIterator({ MATCH: '*', COUNT: 1 })) {
    for (const key of Array.isArray(batch) ? batch : [batch]) seen.add(key);
  }
  assert.deepEqual([...seen].sort(), names);

  step = 'no client reported an error';
  assert.deepEqual(errors, []);
  client.destroy();
  process.stdout.write('ok\n');
  process.exit(0);
}

run().catch(fail);
