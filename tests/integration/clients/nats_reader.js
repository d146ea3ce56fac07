'use strict';
// nats_reader.js - a NATS subscriber made with nats.js (npm "nats", pinned in
// tests/package-lock.json), as a user of tickd's NATS subjects would make one:
// connect({ servers }) and every other option left at its default.
//
//   node nats_reader.js core <url> <subject>[,<subject>...] <count>
//     core NATS: subscribes to each subject, prints "ready" once the server
//     has the subscriptions, then one line per message.
//   node nats_reader.js stream <url> <stream> <count>
//     a late joiner: an ordered consumer of the JetStream stream (what
//     js.consumers.get(stream) gives with no options: the whole stream from
//     its first message), one line per message.
//
// Each message line is JSON: {"subject", "headers": {name: value}, "data"},
// and for the stream also "seq" (the stream sequence). After <count>
// messages it prints "ok" and exits 0; any error is printed and exits 1.

const { connect } = require('nats');

function line(m, extra) {
  const headers = {};
  if (m.headers) {
    for (const k of m.headers.keys()) headers[k] = m.headers.get(k);
  }
  process.stdout.write(JSON.stringify({ subject: m.subject, headers, data: m.string(), ...extra }) +
                       '\n');
}

async function core(nc, subjects, count) {
  let seen = 0;
  let done;
  const all = new Promise((resolve) => { done = resolve; });
  for (const subject of subjects.split(',')) {
    nc.subscribe(subject, {
      callback: (err, m) => {
        if (err) fail(err);
        if (seen === count) return;
        line(m, {});
        if (++seen === count) done();
      },
    });
  }
  await nc.flush();
  process.stdout.write('ready\n');
  if (count > 0) await all;
}

async function stream(nc, name, count) {
  const js = nc.jetstream();
  const consumer = await js.consumers.get(name);
  const messages = await consumer.consume();
  let seen = 0;
  for await (const m of messages) {
    line(m, { seq: m.seq });
    if (++seen === count) break;
  }
}

function fail(e) {
  process.stdout.write(`error: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
}

async function main() {
  const [mode, url, what, count] = process.argv.slice(2);
  const nc = await connect({ servers: url });
  if (mode === 'core') await core(nc, what, Number(count));
  else if (mode === 'stream') await stream(nc, what, Number(count));
  else throw new Error(`unknown mode ${mode}`);
  await nc.drain();
  process.stdout.write('ok\n');
}

main().catch(fail);
