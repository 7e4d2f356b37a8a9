import type { Plugin } from "vite";

export interface FaultlineSourcemapsOptions {
  /** The release the maps belong to: the same string the page passes to `init({ release })`. */
  release: string;
  /** The Faultline server. Default: `FAULTLINE_SERVER`, else `http://127.0.0.1:8080`. */
  server?: string;
  /** An admin token of that server. Default: `FAULTLINE_ADMIN_TOKEN`. */
  token?: string;
  /** Where outDir is served: `~/` matches any scheme and host. Default: `~/` + Vite's `base`
   * (or `base` itself when it is an absolute URL). */
  urlPrefix?: string;
  /** Which chunks to upload, by their path in outDir (`assets/index-3f2a9c1b.js`): path
   * prefixes, RegExps or predicates. Default: every JavaScript chunk. */
  include?: string | RegExp | ((fileName: string) => boolean) | Array<string | RegExp | ((fileName: string) => boolean)>;
  /** Remove every `.map` file of the build from outDir after the upload. Default: false. */
  deleteAfterUpload?: boolean;
  /** Fail the build when an upload fails or the release or token is missing. Default: true
   * (with false the build warns and goes on). */
  failOnError?: boolean;
  /** Time allowed per upload, in milliseconds. Default: 60000. */
  timeoutMs?: number;
}

/** What the server answered for one stored map. */
export interface UploadedSourcemap {
  release: string;
  url: string;
  bytes: number;
  sources: number;
  /** Whether the map carries `sourcesContent` (source context for the frames). */
  sources_content: boolean;
}

/** Uploads a build's source maps to Faultline after `vite build` (see the README). */
export function faultlineSourcemaps(options: FaultlineSourcemapsOptions): Plugin;
export default faultlineSourcemaps;

/** Uploads one source map, gzipped (`PUT /sourcemaps/{release}?url=URL`); throws with the server's reason. */
export function uploadSourcemap(args: { server: string; token: string; release: string; url: string; map: string; timeoutMs?: number }): Promise<UploadedSourcemap>;
