#!/usr/bin/env node
// Makes the npm `solc` package (the official compiler built to WebAssembly) answer like a
// native solc binary for the two calls py-solc-x makes: `--version` and `--standard-json`.
// Latent passes every source's content in the JSON input, so no import callback is needed.
'use strict';
const modules = process.env.LATENT_NODE_MODULES;
const solc = require(require.resolve('solc', { paths: modules ? [modules] : [process.cwd()] }));

const args = process.argv.slice(2);
if (args.includes('--version')) {
  process.stdout.write('solc, the solidity compiler commandline interface\nVersion: ' + solc.version() + '\n');
  process.exit(0);
}
if (!args.includes('--standard-json')) {
  process.stderr.write('solcjs_shim: only --version and --standard-json are supported\n');
  process.exit(2);
}
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  process.stdout.write(solc.compile(input));
  process.stdout.write('\n');
});
