'use strict';
// conflate.js - node-redis (npm "redis") with its default options on
// conflated channels: node conflate.js <port> <collect ms>
//
// Subscribes to quote.AAPL@100ms and pSubscribes to trade.*@100ms, tries a
// bad suffix (quote.AAPL@5ms: the command must fail with the server's
// error), prints "ready", collects what arrives for <collect ms>, then
// prints one JSON line {messages: [{pattern, channel, message}], error} and
// "ok".

const { createClient } = require('redis');

async function main() {
  const [port, collectMs] = process.argv.slice(2);
  const client = createClient({ url: `redis://127.0.0.1:${port}` });
  client.on('error', (err) => {
    console.log(`client error: ${err.message}`);
    process.exit(1);
  });
  await client.connect();
  const messages = [];
  await client.subscribe('quote.AAPL@100ms', (message, channel) =>
    messages.push({ pattern: null, channel, message }));
  await client.pSubscribe('trade.*@100ms', (message, channel) =>
    messages.push({ pattern: 'trade.*@100ms', channel, message }));
  let error = null;
  try {
    await Promise.race([
      client.subscribe('quote.AAPL@5ms', () => {}),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no reply in 5 s')), 5000)),
    ]);
  } catch (err) {
    error = err.message;
  }
  console.log('ready');
  await new Promise((resolve) => setTimeout(resolve, Number(collectMs)));
  console.log(JSON.stringify({ messages, error }));
  client.destroy();
  console.log('ok');
}

main().catch((err) => {
  console.log(`failed: ${err.stack}`);
  process.exit(1);
});
