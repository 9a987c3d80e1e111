// Runs the seed's client logic against accord and prints one JSON line per result, so the Python
// test can assert on what the real npm client saw. A watch prints "watching" once it has the
// first value, then each change, and exits after ACCORD_TEST_CHANGES changes.
import { consul, getConfig, getServiceUrl, watchKey } from "./consul-client.mjs";

const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

async function lookups() {
  for (const name of ["chromadb", "ai-gateway", "missing"]) {
    try {
      say({ service: name, url: await getServiceUrl(name) });
    } catch (err) {
      say({ service: name, error: err.message });
    }
  }
  say({ config: "cors/allowed_origins", value: await getConfig("cors/allowed_origins", []) });
  say({ config: "domains/none", value: await getConfig("domains/none", "fallback") });
  say({ set: await consul.kv.set("blog/config/from-node", JSON.stringify({ ok: true })) });
  say({ leader: await consul.status.leader() });
}

function watching() {
  const wanted = Number(process.env.ACCORD_TEST_CHANGES || "1");
  let seen = 0;
  const watch = watchKey(
    "config/feature",
    (value) => {
      seen += 1;
      say(seen === 1 ? { watching: value } : { change: value });
      if (seen > wanted) {
        watch.end();
        process.exit(0);
      }
    },
    (err) => say({ watch_error: err.message }),
  );
}

if (process.argv[2] === "watch") watching();
else lookups().catch((err) => {
  say({ fatal: err.message });
  process.exit(1);
});
