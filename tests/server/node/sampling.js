// The official aws-xray-sdk-core (Node) deciding sampling with a server's centralized
// rules. Run by tests/server/test_node_sdk_sampling.py with NODE_PATH pointing at an
// install of aws-xray-sdk-core and AWS_XRAY_DAEMON_ADDRESS at the server.
//
// node sampling.js SERVICE: waits (up to 30 s) until the rules' decisions show, then
// prints one JSON line {rule: [...], keep: [decisions], drop: [decisions]}.

const AWSXRay = require('aws-xray-sdk-core');

const sampler = AWSXRay.middleware.sampler || require('aws-xray-sdk-core/dist/lib/middleware/sampling/default_sampler');
const service = process.argv[2];
const decide = (path) => Boolean(sampler.shouldSample({ host: 'shop.local', httpMethod: 'GET', urlPath: path, serviceName: service }));
const deadline = Date.now() + 30000;

function attempt() {
  const rules = (sampler.ruleCache.getRules ? sampler.ruleCache.getRules() : sampler.ruleCache.rules || []).map((r) => r.getName());
  if (rules.includes('node-keep')) {
    const keep = Array.from({ length: 50 }, () => decide('/keep/x'));
    const drop = Array.from({ length: 50 }, () => decide('/drop/x'));
    console.log(JSON.stringify({ rules, keep, drop }));
    process.exit(0);
  }
  if (Date.now() > deadline) {
    console.error(`the sampler never received the rules (has ${JSON.stringify(rules)})`);
    process.exit(1);
  }
  decide('/keep/x'); // the first decision starts the pollers
  setTimeout(attempt, 100);
}
AWSXRay.setLogger({ error: console.error, warn: () => {}, info: () => {}, debug: () => {} });
attempt();
