'use strict';
// acl.js - node-redis (npm "redis", or "redis5") with its default options as
// a user with narrow rights (servers.py's ALICE: trade.A* only): its
// credentials in the URL, so node-redis 6 sends HELLO 3 AUTH <user> <pass>
// and node-redis 5 AUTH <user> <pass>. test_node_clients.py runs:
//
//   node acl.js <package> <port> <default password> <user> <user password>
//
// A wrong password is refused; PUBLISH, GET, SUBSCRIBE and a PSUBSCRIBE that
// would cover a channel outside its rights answer NOPERM; its own pattern
// delivers its channels and nothing else. Prints each step and exits 0 when
// every assertion held, 1 on the first that did not.

const assert = require('node:assert/strict');

const [pkg, portText, password, user, userPassword] = process.argv.slice(2);

let step = 'start';
function fail(err) {
  process.stdout.write(`FAILED at step "${step}": ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
}
setTimeout(() => fail(new Error('still running after 20000 ms')), 20000);

function url(name, pass) {
  return `redis://${encodeURIComponent(name)}:${encodeURIComponent(pass)}@127.0.0.1:${portText}`;
}

async function connect(name, pass) {
  const { createClient } = require(pkg);
  const client = createClient({ url: url(name, pass) });
  client.on('error', () => {});
  await client.connect();
  return client;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function run() {
  step = 'a wrong password is refused with WRONGPASS';
  const { createClient } = require(pkg);
  const wrong = createClient({ url: url(user, 'wrong-' + userPassword), socket: { reconnectStrategy: false } });
  wrong.on('error', () => {});
  await assert.rejects(wrong.connect(), /WRONGPASS/);

  step = 'the user connects and PUBLISH, GET, MGET outside its rights answer NOPERM';
  const alice = await connect(user, userPassword);
  const admin = await connect('default', password);
  await assert.rejects(alice.publish('trade.MSFT', 'T,1,MSFT,1.0000,1,B'), /NOPERM/);
  await assert.rejects(alice.get('trade.MSFT'), /NOPERM/);
  await assert.rejects(alice.mGet(['trade.AAPL', 'trade.MSFT']), /NOPERM/);

  step = 'SUBSCRIBE outside its rights, and PSUBSCRIBE of a wider pattern, answer NOPERM';
  const sub = alice.duplicate();
  sub.on('error', () => {});
  await sub.connect();
  await assert.rejects(sub.subscribe('trade.MSFT', () => {}), /NOPERM/);
  await assert.rejects(sub.pSubscribe('trade.*', () => {}), /NOPERM/);

  step = 'its own pattern delivers its channels and nothing else';
  const got = [];
  await sub.pSubscribe('trade.A*', (message, channel) => got.push([channel, message]));
  assert.equal(await admin.publish('trade.MSFT', 'T,2,MSFT,310.5000,2,B'), 0);
  assert.equal(await alice.publish('trade.AMZN', 'T,3,AMZN,180.2500,3,S'), 1);
  for (let i = 0; i < 50 && got.length === 0; i++) await sleep(20);
  await sleep(300);
  assert.deepEqual(got, [['trade.AMZN', 'T,3,AMZN,180.2500,3,S']]);

  await sub.quit();
  await alice.quit();
  await admin.quit();
  process.stdout.write('ok\n');
  process.exit(0);
}

run().catch(fail);
