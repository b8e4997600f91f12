// The official tus server for Node, @tus/server with its @tus/file-store, as the peer of
// bench/upload.py:
//
//     node bench/tus-node-server.mjs --port 1080 --path /files --dir /tmp/tus-files
//
// Listens on 127.0.0.1 only and prints "listening <port>" once it accepts requests.
// The FileStore appends each PATCH body to the upload's file with a write stream; it never
// calls fsync, so an upload is answered as complete while its bytes may still be in the
// page cache.
import { parseArgs } from "node:util";
import { FileStore } from "@tus/file-store";
import { Server } from "@tus/server";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    path: { type: "string", default: "/files" },
    dir: { type: "string" },
  },
});
if (!values.port || !values.dir) {
  console.error("usage: node bench/tus-node-server.mjs --port N --path /files --dir DIR");
  process.exit(2);
}

const server = new Server({
  path: values.path,
  datastore: new FileStore({ directory: values.dir }),
});
const http = server.listen({ host: "127.0.0.1", port: Number(values.port) }, () => {
  console.log(`listening ${values.port}`);
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => http.close(() => process.exit(0)));
}
