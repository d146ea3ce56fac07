'use strict';
// scenario.js - one npm Redis client through the pub/sub scenario every client
// test in this folder runs, with assertions; test_node_clients.py starts the
// server and runs this once per client and protocol variant:
//
//   node scenario.js <adapter> <package> <resp> <port> <password> <wrong-password>
//
// adapter: node_redis or ioredis (the file beside this one); package: the npm
// name it loads from tests/node_modules ("redis", "redis5", "ioredis",
// "ioredis5"); resp: "default" (the client's own choice) or 2 or 3.
//
// It prints each step as it goes and exits 0 when every assertion held, 1 on
// the first that did not (or on a step that got no answer within its time,
// for example a client looping to reconnect), 2 when the package is not
// installed. The server is left to the caller.

const assert = require('node:assert/strict');
const path = require('node:path');

const STEP_MS = 5000;
const QUIET_MS = 300;
const TOTAL_MS = 25000;

const [adapterName, pkg, resp, portText, password, wrongPassword] = process.argv.slice(2);
const port = Number(portText);

function say(line) {
  process.stdout.write(`${line}\n`);
}

let step = 'start';
const clientErrors = [];

function fail(err) {
  say(`FAILED at step "${step}": ${err && err.stack ? err.stack : err}`);
  if (clientErrors.length) say(`client errors seen: ${clientErrors.join(' | ')}`);
  process.exit(1);
}

setTimeout(() => fail(new Error(`scenario still running after ${TOTAL_MS} ms`)), TOTAL_MS);

function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Resolves once predicate() is true, polled every 10 ms.
function until(predicate, what) {
  return within(STEP_MS, what, new Promise((resolve) => {
    const poll = () => (predicate() ? resolve() : setTimeout(poll, 10));
    poll();
  }));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function loadAdapter() {
  try {
    return require(path.join(__dirname, adapterName)).make(pkg, resp);
  } catch (err) {
    if (err.code === 'MODULE_NOT_FOUND') {
      say(`npm package "${pkg}" is not installed (${err.message.split('\n')[0]}): ` +
          'run "npm ci --prefix tests" from the source tree (deploy/setup.sh test does)');
      process.exit(2);
    }
    throw err;
  }
}

function trade(symbol, ts, price, size, side) {
  return `T,${ts},${symbol},${price.toFixed(4)},${size},${side}`;
}

async function run() {
  const client = loadAdapter();
  const { version } = require(`${pkg}/package.json`);
  say(`${pkg} ${version}, options: ${resp === 'default' ? 'defaults' : `RESP${resp}`}, ` +
      `expects RESP${client.protocol}`);

  step = 'a wrong password is refused';
  const refusal = await within(STEP_MS, step, client.refused(port, wrongPassword));
  say(`refused: ${refusal.message}`);
  assert.ok(!refusal.message.includes(wrongPassword), 'the error repeats the wrong password');
  assert.match(refusal.message, /WRONGPASS|invalid .*password/i);

  step = 'the right password connects';
  const onError = (err) => clientErrors.push(err.message);
  const sub = await within(STEP_MS, step, client.connect(port, password, onError));
  const pub = await within(STEP_MS, step, client.connect(port, password, onError));

  const got = [];
  const onMessage = (channel, message) => got.push(['message', channel, message]);
  const onPmessage = (pattern, channel, message) =>
    got.push(['pmessage', pattern, channel, message]);

  step = 'SUBSCRIBE and PSUBSCRIBE are confirmed with their counts';
  const subscribed = await within(STEP_MS, 'SUBSCRIBE', sub.subscribe('trade.AAPL', onMessage));
  const psubscribed = await within(STEP_MS, 'PSUBSCRIBE', sub.psubscribe('trade.*', onPmessage));
  say(`confirmations: subscribe ${subscribed}, psubscribe ${psubscribed}`);
  if (subscribed !== null) assert.deepEqual([subscribed, psubscribed], [1, 2]);

  step = 'PUBLISH counts both receivers and the tick arrives on the channel and the pattern';
  const first = trade('AAPL', 1700000000000000000n, 101.25, 100, 'B');
  assert.equal(await within(STEP_MS, 'PUBLISH', pub.publish('trade.AAPL', first)), 2);
  await until(() => got.length >= 2, 'the tick on the channel and on the pattern');
  assert.deepEqual(got.slice().sort(), [
    ['message', 'trade.AAPL', first],
    ['pmessage', 'trade.*', 'trade.AAPL', first],
  ]);
  say(`received: ${JSON.stringify(got)}`);

  step = 'PING in subscribe mode answers';
  assert.deepEqual(await within(STEP_MS, 'PING', sub.ping()), client.pong);
  assert.deepEqual(await within(STEP_MS, 'PING arg', sub.ping('still-there')),
                   client.pongWith('still-there'));

  step = 'UNSUBSCRIBE stops delivery on the channel, the pattern still delivers';
  const unsubscribed = await within(STEP_MS, 'UNSUBSCRIBE', sub.unsubscribe('trade.AAPL'));
  if (unsubscribed !== null) assert.equal(unsubscribed, 1);
  got.length = 0;
  const second = trade('AAPL', 1700000000000000001n, 101.5, 30, 'S');
  assert.equal(await within(STEP_MS, 'PUBLISH', pub.publish('trade.AAPL', second)), 1);
  await until(() => got.length >= 1, 'the tick on the pattern');
  await sleep(QUIET_MS);
  assert.deepEqual(got, [['pmessage', 'trade.*', 'trade.AAPL', second]]);

  step = 'PUNSUBSCRIBE stops delivery on the pattern';
  const punsubscribed = await within(STEP_MS, 'PUNSUBSCRIBE', sub.punsubscribe('trade.*'));
  if (punsubscribed !== null) assert.equal(punsubscribed, 0);
  got.length = 0;
  const third = trade('AAPL', 1700000000000000002n, 101.75, 5, 'B');
  assert.equal(await within(STEP_MS, 'PUBLISH', pub.publish('trade.AAPL', third)), 0);
  await sleep(QUIET_MS);
  assert.deepEqual(got, []);

  step = 'no client reported an error';
  assert.deepEqual(clientErrors, []);
  sub.close();
  pub.close();
  say('ok');
  process.exit(0);
}

run().catch(fail);
