// Drives the real eureka-js-client (npm, unmodified) against our server,
// step by step.
//
// Usage: NODE_PATH=<node_modules> node js_client.js '<settings json>'
// where settings are {host, port, servicePath, shouldUseDelta, instanceId?,
// portAsStrings?}; host may carry `user:pass@` for Basic auth.
//
// Prints "STEP <name> <json>" on stdout after each step and waits for a line
// on stdin before the next one, so the Rust test can act on the server in
// between. The library logs to stdout as well: the test keeps only STEP
// lines. Exits non-zero on any failure.
'use strict';

const readline = require('readline');
const { Eureka } = require('eureka-js-client');

const settings = JSON.parse(process.argv[2]);
const WAIT_MS = 20000;

function step(name, data) {
  process.stdout.write(`STEP ${name} ${JSON.stringify(data === undefined ? {} : data)}\n`);
}

function fail(reason) {
  process.stderr.write(`js_client: ${reason}\n`);
  process.exit(1);
}

const stdin = readline.createInterface({ input: process.stdin });
const commands = [];
let waiting = null;
stdin.on('line', (line) => {
  if (waiting) {
    const resolve = waiting;
    waiting = null;
    resolve(line.trim());
  } else {
    commands.push(line.trim());
  }
});
stdin.on('close', () => fail('stdin closed'));

function nextCommand() {
  if (commands.length) return Promise.resolve(commands.shift());
  return new Promise((resolve) => { waiting = resolve; });
}

async function expectGo() {
  const command = await nextCommand();
  if (command !== 'go') fail(`unexpected command ${JSON.stringify(command)}`);
}

// Polls the client's own cache until `check` returns a value, or fails.
async function until(what, check) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// Counts what the client does: registry fetches by kind (through its
// documented requestMiddleware hook), and its 'registered' and 'heartbeat'
// events.
const seen = { full: 0, delta: 0, heartbeats: 0, registrations: 0 };

const instance = {
  app: 'jsapp',
  hostName: 'js-host.local',
  ipAddr: '127.0.0.1',
  port: { $: 8080, '@enabled': true },
  vipAddress: 'jsapp.vip',
  statusPageUrl: 'http://js-host.local:8080/info',
  dataCenterInfo: {
    '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo',
    name: 'MyOwn',
  },
  metadata: { team: 'interop-js' },
};
if (settings.instanceId) instance.instanceId = settings.instanceId;
// As many users write it (strings from the environment).
if (settings.portAsStrings) instance.port = { $: '8080', '@enabled': 'true' };

const client = new Eureka({
  instance,
  shouldUseDelta: settings.shouldUseDelta,
  eureka: {
    host: settings.host,
    port: settings.port,
    servicePath: settings.servicePath,
    heartbeatInterval: 200,
    registryFetchInterval: 200,
    maxRetries: 0,
  },
  requestMiddleware: (opts, done) => {
    if (!opts.method) {
      if (opts.uri === 'delta') seen.delta += 1;
      else seen.full += 1;
    }
    done(opts);
  },
});
client.on('heartbeat', () => { seen.heartbeats += 1; });
client.on('registered', () => { seen.registrations += 1; });

function start() {
  return new Promise((resolve, reject) => {
    client.start((err) => (err ? reject(err) : resolve()));
  });
}

function stop() {
  return new Promise((resolve, reject) => {
    client.stop((err) => (err ? reject(err) : resolve()));
  });
}

async function main() {
  await start();
  step('started', { instanceId: client.instanceId, seen });
  await expectGo();

  // The test registered OTHERAPP after our first (full) fetch: a later
  // fetch (a delta when shouldUseDelta) must bring it into the cache.
  const byApp = await until('OTHERAPP by app id', () => {
    const found = client.getInstancesByAppId('otherapp');
    return found.length ? found : null;
  });
  const byVip = client.getInstancesByVipAddress('otherapp.vip');
  step('discovered', { byApp, byVip, self: client.getInstancesByAppId('JSAPP'), seen });
  await expectGo();

  // The test cancelled OTHERAPP: the cache must drop it.
  await until('OTHERAPP to leave the cache', () =>
    client.getInstancesByAppId('OTHERAPP').length === 0
      && client.getInstancesByVipAddress('otherapp.vip').length === 0);
  step('forgotten', { seen });
  await expectGo();

  await stop();
  step('stopped', { seen });
  process.exit(0);
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));
