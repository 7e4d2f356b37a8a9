-- Source maps (issue 22): each release's maps, shared by every node so all of them
-- symbolicate the same way. `version` changes with every upload and delete of a release,
-- so a node's cache of parsed maps learns from one small read that it is stale.

CREATE TABLE sourcemap_releases (
    release    text        PRIMARY KEY,
    version    bigint      NOT NULL,
    last_used  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sourcemaps (
    release         text        NOT NULL REFERENCES sourcemap_releases (release) ON DELETE CASCADE,
    url             text        NOT NULL,
    map             bytea       NOT NULL,
    bytes           bigint      NOT NULL,
    sources         integer     NOT NULL,
    sources_content boolean     NOT NULL,
    uploaded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (release, url)
);
