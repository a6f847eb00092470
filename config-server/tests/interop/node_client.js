// Reads configuration from config-server with the unmodified npm package
// `cloud-config-client`, the way a Node service would, and prints what it
// got as one JSON document on stdout for the Rust test to check.
//
// Usage: node node_client.js <server address> <app> <profiles,comma,list> [label]
// Finds the package through NODE_PATH (set by the test).
'use strict'

const client = require('cloud-config-client')

async function main () {
  const [endpoint, name, profiles, label] = process.argv.slice(2)
  const config = await client.load({
    endpoint,
    name,
    profiles: profiles.split(','),
    label: label || undefined,
    // The client's own `${...}` substitution from a context object.
    context: { host: 'node-host' }
  })
  const raw = config.raw
  const out = {
    name: raw.name,
    profiles: raw.profiles,
    label: raw.label,
    version: raw.version,
    sources: raw.propertySources.map(s => s.name),
    properties: config.properties,
    object: config.toObject()
  }
  process.stdout.write(JSON.stringify(out))
}

main().catch(err => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n')
  process.exit(1)
})
