// The service-discovery and config helpers a team's Node services use against Consul (seed 001,
// section 4.3.1), written for these tests: KV first, the healthy catalog second, a 30 s cache,
// JSON config values, and key watches. Pointed at accord with ACCORD_TEST_PORT / ACCORD_TEST_TOKEN.
import Consul from "consul";

export const consul = new Consul({
  host: "127.0.0.1",
  port: Number(process.env.ACCORD_TEST_PORT),
  defaults: process.env.ACCORD_TEST_TOKEN ? { token: process.env.ACCORD_TEST_TOKEN } : {},
});

const PREFIX = "blog";
const TTL_MS = 30000;
const cache = new Map();

function remembered(name) {
  const hit = cache.get(name);
  return hit && Date.now() - hit.at < TTL_MS ? hit.url : undefined;
}

export async function getServiceUrl(name) {
  const hit = remembered(name);
  if (hit) return hit;
  const pinned = await consul.kv.get(`${PREFIX}/services/${name}/url`);
  if (pinned && pinned.Value) {
    cache.set(name, { url: pinned.Value, at: Date.now() });
    return pinned.Value;
  }
  const healthy = await consul.health.service({ service: name, passing: true });
  if (healthy.length > 0) {
    const { Address, Port } = healthy[0].Service;
    const url = `http://${Address}:${Port}`;
    cache.set(name, { url, at: Date.now() });
    return url;
  }
  throw new Error(`Service not found: ${name}`);
}

function parsed(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export async function getConfig(key, fallback = null) {
  const found = await consul.kv.get(`${PREFIX}/config/${key}`);
  return found && found.Value ? parsed(found.Value) : fallback;
}

export function watchKey(key, onValue, onError) {
  const watch = consul.watch({ method: consul.kv.get, options: { key: `${PREFIX}/${key}`, wait: "5s" } });
  watch.on("change", (data) => {
    if (data && data.Value) onValue(parsed(data.Value));
  });
  watch.on("error", onError);
  return watch;
}
