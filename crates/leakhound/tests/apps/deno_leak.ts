// A Deno HTTP server that keeps every request's session in a module-level Map, never
// evicted (FIXED=1: the fixed twin deletes it once the response is made). Writes its
// pid to $PID_FILE.
class Session {
  constructor(public id: number, public user: string, public started: number) {}
}

const sessions = new Map<number, Session>();
const fixed = Deno.env.get("FIXED") === "1";
let next = 0;

const pidFile = Deno.env.get("PID_FILE");
if (pidFile) Deno.writeTextFileSync(pidFile, String(Deno.pid));

Deno.serve({ port: Number(Deno.env.get("PORT")), hostname: "127.0.0.1" }, (_req) => {
  const id = ++next;
  sessions.set(id, new Session(id, "user" + (id % 1000), Date.now()));
  const body = "session " + sessions.size;
  if (fixed) sessions.delete(id);
  return new Response(body);
});
