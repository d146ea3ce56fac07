'use strict';
// bars.js - node-redis (npm "redis") with its default options (RESP3 in
// node-redis 6) on a bar channel or a bar key, for test_bars.py:
//
//   node bars.js subscribe <port> <channel>   prints "subscribed", then the
//                                             first message's text, and exits
//   node bars.js get <port> <key>             prints GET's answer as JSON
//   node bars.js scan <port> <pattern>        prints each key scanIterator
//                                             visits (MATCH pattern, COUNT 1)
//
// Exits 1 with the error on anything unexpected, or after 20 s.

const [mode, portText, name] = process.argv.slice(2);

function fail(err) {
  process.stdout.write(`FAILED: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
}
setTimeout(() => fail(new Error('still running after 20000 ms')), 20000);

async function run() {
  const { createClient } = require('redis');
  const client = createClient({ url: `redis://127.0.0.1:${portText}` });
  client.on('error', fail);
  await client.connect();
  if (mode === 'get') {
    process.stdout.write(`${JSON.stringify(await client.get(name))}\n`);
    await client.quit();
    return;
  }
  if (mode === 'scan') {
    for await (const batch of client.scanIterator({ MATCH: name, COUNT: 1 })) {
      for (const key of Array.isArray(batch) ? batch : [batch]) process.stdout.write(`${key}\n`);
    }
    await client.quit();
    return;
  }
  if (mode !== 'subscribe') throw new Error(`unknown mode ${mode}`);
  let got;
  const first = new Promise((resolve) => { got = resolve; });
  await client.subscribe(name, (message) => got(message));
  process.stdout.write('subscribed\n');
  process.stdout.write(`${await first}\n`);
  await client.quit();
}

run().then(() => process.exit(0), fail);
