vcl 4.1;
# Tessera http-cache: Varnish in front of maps-api (Maps API v3, SQL API v3, Stats API).
#
#   client -> nginx (router-http) -> Varnish -> nginx internal server -> FastCGI maps-api.sock
#
# nginx sends only GET and HEAD of /api/v3/{maps,sql,stats}/ here; POST and the other methods go
# straight to maps-api (Varnish cannot tell a backend that the client has gone, so a passed POST
# would lose cancel-on-abort). Placeholders (rendered like the nginx config):
#   @RUN_DIR@  dir of the nginx internal server's socket maps-backend.sock
#
# varnishd must name its two listen endpoints (the `-a NAME=...` argument):
#   web    the unix socket nginx proxies to (client traffic)
#   purge  127.0.0.1:PORT for the cdn-invalidator; only PURGE and BAN are served there (scaled out:
#          a private address, TESSERA_VARNISH_PURGE_LISTEN)
# and needs varnish-modules (vmod_xkey). Parameters the harness and the systemd unit pass:
#   -p http_req_hdr_len=16k -p http_req_size=96k -p workspace_client=192k -p nuke_limit=1000
# (nginx accepts request lines and header fields up to 16k; Varnish's defaults are 8k/32k).
#
# Cache contract with the backend (anything else is passed or stored as hit-for-miss):
#   * Only GET/HEAD of /api/v3/maps/..., /api/v3/stats/..., /api/v3/sql/<conn>/query and
#     /api/v3/sql/<conn>/model/... that carry a credential (Authorization header, `access_token`
#     query parameter or the __Host-tessera_session cookie) are looked up. The credential
#     headers are part of the hash, so every credential has its own entries; they still go to
#     the backend, which authorises every miss.
#   * A response is stored only if it is a 200/204 without Set-Cookie whose backend sent
#     `Surrogate-Control: max-age=N` (N > 0). Cache-Control (`private, max-age=N` for browsers)
#     reaches the client untouched; Surrogate-Control never leaves Varnish.
#   * Surrogate keys: X-Source-Key: <source id>, X-Connection-Key: <account>:<connection>,
#     X-Credential-Key: <credential id> become xkeys src:<id>, conn:<a>:<c>, cred:<id> and stay
#     on the stored object (for BAN); a `Surrogate-Key: k1 k2` header adds keys as they are
#     (xkey purges only). None of these headers is sent to the client.
#   * A client `Cache-Control: no-cache` (or `Pragma: no-cache`) evicts its entry and refetches;
#     `max-age=N` (>= 10 s) limits the age of what it is served and has entries of its own (the
#     client's Cache-Control reaches the backend, whose answer depends on it).
#
# Invalidation (purge endpoint, loopback and the listed invalidators only; everywhere else 403):
#   PURGE /  with  Xkey-Purge: src:<id> conn:<a>:<c> cred:<id> ...   (hard purge, space-separated)
#            or    Xkey-Softpurge: ...                               (stale for the grace period)
#   BAN /    with  X-Ban-Source / X-Ban-Connection / X-Ban-Credential: <value> (ANDed),
#            or    X-Ban-All: 1
# Answers are JSON: {"purged": N} / {"banned": true} / {"error","status","code"}.

import std;
import xkey;

backend maps_backend {
    .path = "@RUN_DIR@/maps-backend.sock";
    .connect_timeout = 5s;
    # Longer than nginx's fastcgi_read_timeout (75 s): a slow backend gets nginx's JSON 504.
    .first_byte_timeout = 80s;
    .between_bytes_timeout = 80s;
}

acl tessera_invalidators {
    "127.0.0.1";
    "::1";
    # Scaled out: the other app VMs' cdn-invalidators (TESSERA_VARNISH_INVALIDATORS). Next to this file;
    # packaged, a link to what tessera-varnish-nodes writes into @RUN_DIR@ at each Varnish start.
    include "./tessera-invalidators.vcl";
}

sub vcl_recv {
    if (local.socket == "purge") {
        call tessera_invalidate;
    }
    # Client side: nginx refuses these methods already; this is the second lock.
    if (req.method == "PURGE" || req.method == "BAN") {
        return (synth(403, "Forbidden"));
    }
    unset req.http.X-Tessera-Cache;
    unset req.http.X-Tessera-Client-Cache-Control;
    # Varnish appended client.ip to X-Forwarded-For; over nginx's unix socket that is 0.0.0.0.
    if (req.http.X-Forwarded-For) {
        set req.http.X-Forwarded-For = regsub(req.http.X-Forwarded-For, "(^|,\s*)0\.0\.0\.0$", "");
        if (req.http.X-Forwarded-For == "") {
            unset req.http.X-Forwarded-For;
        }
    }

    # No conditional answers: @carto/api-client's fetchMap({autoRefresh}) sends `If-Modified-Since: <now>`
    # on its handshakes and TileJSON requests and parses every answer as JSON; a 304 (which Varnish would
    # give any stored object older than <now>) has no body, so the refresh failed. It wants the current
    # JSON, whose `cache` parameter tells it whether the data changed. Nothing here sends validators
    # (ETag, Last-Modified), so browsers never make conditional requests of their own.
    unset req.http.If-Modified-Since;
    unset req.http.If-None-Match;

    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    if (req.url !~ "^/api/v3/(maps|stats)/" && req.url !~ "^/api/v3/sql/[^/?#]+/(query([?#]|$)|model/)") {
        return (pass);
    }
    # Anonymous requests (public maps, preflights, 401s) are never stored.
    if (!req.http.Authorization
        && req.url !~ "[?&]access_token=[^&]"
        && req.http.Cookie !~ "(^|;)\s*__Host-tessera_session=[^;\s]") {
        return (pass);
    }

    # Contract §1.6: the client may ask for fresher data than the cache holds (minimum 10 s), and
    # its Cache-Control lowers the max-age the backend answers with. Varnish drops Cache-Control
    # from the backend request of a miss: keep a copy for vcl_backend_fetch.
    if (req.http.Cache-Control) {
        set req.http.X-Tessera-Client-Cache-Control = req.http.Cache-Control;
    }
    if (req.http.Cache-Control ~ "(?i)no-cache|no-store" || req.http.Pragma ~ "(?i)no-cache") {
        # Evict this credential's entry for the URL (vcl_purge restarts the request), so that
        # nobody is served the older copy afterwards, then fetch it afresh.
        if (req.restarts == 0) {
            return (purge);
        }
    } elsif (req.http.Cache-Control ~ "(?i)max-age=[0-9]+") {
        set req.ttl = std.duration(regsub(req.http.Cache-Control, "(?i)^.*max-age=([0-9]+).*$", "\1") + "s", 10s);
        if (req.ttl < 10s) {
            set req.ttl = 10s;
        }
    }
    return (hash);
}

sub vcl_hash {
    hash_data(req.url);
    hash_data("host:" + req.http.Host);
    hash_data("proto:" + req.http.X-Forwarded-Proto);
    # Everything the backend may authenticate or authorise with (the URL holds access_token).
    # The whole Cookie header, not just the session cookie: a duplicate cookie name can never
    # make two browsers share an entry.
    hash_data("auth:" + req.http.Authorization);
    hash_data("cookie:" + req.http.Cookie);
    # Referer-restricted tokens are checked against Origin, else the Referer's scheme://host:port.
    hash_data("origin:" + req.http.Origin);
    hash_data("referer:" + regsub(req.http.Referer, "^([A-Za-z][A-Za-z0-9+.-]*://[^/?#]*).*$", "\1"));
    # A client max-age lowers the max-age of the answer: such answers get entries of their own.
    # (no-cache is not hashed: it evicts the entry every other request uses, see vcl_recv.)
    if (req.http.Cache-Control !~ "(?i)no-cache|no-store" && req.http.Cache-Control ~ "(?i)max-age=[0-9]+") {
        hash_data("max-age:" + regsub(req.http.Cache-Control, "(?i)^.*max-age=([0-9]+).*$", "\1"));
    }
    return (lookup);
}

sub vcl_purge {
    return (restart);
}

sub vcl_pass {
    set req.http.X-Tessera-Cache = "PASS";
}

sub vcl_backend_fetch {
    unset bereq.http.X-Tessera-Cache;
    unset bereq.http.X-Varnish;
    if (bereq.http.X-Tessera-Client-Cache-Control) {
        set bereq.http.Cache-Control = bereq.http.X-Tessera-Client-Cache-Control;
        unset bereq.http.X-Tessera-Client-Cache-Control;
    }
}

sub vcl_backend_response {
    # Lean tiles: vector tiles and JSON are stored gzipped, once (Varnish asks the backend for gzip and the
    # backend sends identity, so Varnish compresses). Varnish adds `Vary: Accept-Encoding` and gunzips on
    # delivery for a client that does not accept gzip; passes (public maps) are compressed the same way.
    if (!beresp.http.Content-Encoding
        && beresp.http.Content-Type ~ "^application/(vnd\.mapbox-vector-tile|json|geo\+json|x-ndjson|vnd\.carto-raster-tile)") {
        set beresp.do_gzip = true;
    }
    if (bereq.uncacheable) {
        return (deliver);
    }
    if ((beresp.status != 200 && beresp.status != 204)
        || beresp.http.Set-Cookie
        || beresp.http.Vary == "*"
        || beresp.http.Surrogate-Control !~ "(?i)(^|[,\s])max-age=[0-9]+"
        || beresp.http.Surrogate-Control ~ "(?i)no-store|no-cache|private") {
        call tessera_uncacheable;
    }
    set beresp.ttl = std.duration(regsub(beresp.http.Surrogate-Control, "(?i)^(.*[,\s])?max-age=([0-9]+).*$", "\2") + "s", 0s);
    if (beresp.ttl <= 0s) {
        call tessera_uncacheable;
    }
    # Upper bound whatever the backend says: credentials expire and are revoked.
    if (beresp.ttl > 1d) {
        set beresp.ttl = 1d;
    }
    # No grace: a stale object would be served past its TTL, and the TTL is capped at the lifetime
    # of the credential that may see it (an expired token must not get a stored answer).
    set beresp.grace = 0s;
    set beresp.keep = 0s;
    unset beresp.http.Surrogate-Control;

    # Surrogate keys (vmod_xkey indexes the stored object's xkey header).
    unset beresp.http.xkey;
    if (beresp.http.X-Source-Key) {
        set beresp.http.xkey = "src:" + regsuball(regsuball(beresp.http.X-Source-Key, "^[\s,]+|[\s,]+$", ""), "[\s,]+", " src:");
    }
    if (beresp.http.X-Connection-Key) {
        set beresp.http.xkey = beresp.http.xkey + " conn:" + regsuball(regsuball(beresp.http.X-Connection-Key, "^[\s,]+|[\s,]+$", ""), "[\s,]+", " conn:");
    }
    if (beresp.http.X-Credential-Key) {
        set beresp.http.xkey = beresp.http.xkey + " cred:" + regsuball(regsuball(beresp.http.X-Credential-Key, "^[\s,]+|[\s,]+$", ""), "[\s,]+", " cred:");
    }
    # Further keys, used as they are (space-separated), for xkey purges only.
    if (beresp.http.Surrogate-Key) {
        set beresp.http.xkey = beresp.http.xkey + " " + beresp.http.Surrogate-Key;
    }
    return (deliver);
}

# Hit-for-miss: for 10 s this hash goes to the backend without queueing behind other requests,
# and a later cacheable answer replaces it.
sub tessera_uncacheable {
    set beresp.uncacheable = true;
    set beresp.ttl = 10s;
    set beresp.grace = 0s;
    return (deliver);
}

sub vcl_backend_error {
    set beresp.status = 503;
    set beresp.reason = "Service Unavailable";
    set beresp.http.Content-Type = "application/json";
    set beresp.http.Cache-Control = "no-store";
    set beresp.http.Access-Control-Allow-Origin = "*";
    set beresp.http.Retry-After = "5";
    set beresp.http.X-Request-Id = bereq.http.X-Request-Id;
    # (A long string {"..."} ends at the first `"}`, hence the JSON's closing brace on its own.)
    set beresp.body = {"{"error":"Service unavailable: the API backend is not reachable","status":503,"code":"service_unavailable""}
        + "}" + {"
"};
    set beresp.ttl = 0s;
    set beresp.grace = 0s;
    set beresp.keep = 0s;
    return (deliver);
}

sub vcl_deliver {
    if (req.http.X-Tessera-Cache == "PASS") {
        set resp.http.X-Cache = "PASS";
    } elsif (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    # A hit carries the id of the request that stored it: answer with this request's id.
    if (req.http.X-Request-Id) {
        set resp.http.X-Request-Id = req.http.X-Request-Id;
    }
    unset resp.http.xkey;
    unset resp.http.X-Source-Key;
    unset resp.http.X-Connection-Key;
    unset resp.http.X-Credential-Key;
    unset resp.http.Surrogate-Key;
    unset resp.http.Surrogate-Control;
    unset resp.http.X-Varnish;
    unset resp.http.Via;
}

sub vcl_synth {
    set resp.http.Content-Type = "application/json";
    set resp.http.Cache-Control = "no-store";
    set resp.http.Access-Control-Allow-Origin = "*";
    if (req.http.X-Request-Id) {
        set resp.http.X-Request-Id = req.http.X-Request-Id;
    }
    unset resp.http.X-Varnish;
    if (resp.status == 200 && req.http.X-Tessera-Purged) {
        set resp.body = {"{"purged":"} + req.http.X-Tessera-Purged + {"}
"};
    } elsif (resp.status == 200) {
        set resp.body = {"{"banned":true}
"};
    } else {
        set req.http.X-Tessera-Code = "error";
        if (resp.status == 400) {
            set req.http.X-Tessera-Code = "bad_request";
        } elsif (resp.status == 403) {
            set req.http.X-Tessera-Code = "forbidden";
        } elsif (resp.status == 405) {
            set req.http.X-Tessera-Code = "method_not_allowed";
        }
        set resp.body = {"{"error":""} + regsuball(resp.reason, {"["\\]"}, "") + {"","status":"} + resp.status
            + {","code":""} + req.http.X-Tessera-Code + {"""} + "}" + {"
"};
    }
    return (deliver);
}

# ---- invalidation (purge endpoint) ----------------------------------------------------------

sub tessera_invalidate {
    if (client.ip !~ tessera_invalidators) {
        return (synth(403, "Forbidden"));
    }
    if (req.method == "PURGE") {
        if (req.http.Xkey-Purge) {
            set req.http.X-Tessera-Purged = xkey.purge(req.http.Xkey-Purge);
        } elsif (req.http.Xkey-Softpurge) {
            set req.http.X-Tessera-Purged = xkey.softpurge(req.http.Xkey-Softpurge);
        } else {
            return (synth(400, "PURGE needs an Xkey-Purge or Xkey-Softpurge header"));
        }
        return (synth(200, "Purged"));
    }
    if (req.method == "BAN") {
        if (req.http.X-Ban-All == "1") {
            set req.http.X-Tessera-Ban = "obj.status != 0";
        } else {
            call tessera_ban_term_source;
            call tessera_ban_term_connection;
            call tessera_ban_term_credential;
            if (!req.http.X-Tessera-Ban) {
                return (synth(400, "BAN needs X-Ban-Source, X-Ban-Connection, X-Ban-Credential or X-Ban-All: 1"));
            }
        }
        # Only obj.* fields: the ban lurker can evaluate these bans in the background. The values
        # are checked above and need no quotes (std.ban would compare the quotes too).
        if (!std.ban(req.http.X-Tessera-Ban)) {
            return (synth(400, "Invalid ban"));
        }
        return (synth(200, "Banned"));
    }
    return (synth(405, "Only PURGE and BAN are served here"));
}

sub tessera_ban_term_source {
    if (req.http.X-Ban-Source) {
        if (req.http.X-Ban-Source !~ "^[A-Za-z0-9._:-]{1,200}$") {
            return (synth(400, "Invalid X-Ban-Source"));
        }
        set req.http.X-Tessera-Ban = "obj.http.X-Source-Key == " + req.http.X-Ban-Source;
    }
}

sub tessera_ban_term_connection {
    if (req.http.X-Ban-Connection) {
        if (req.http.X-Ban-Connection !~ "^[A-Za-z0-9._:-]{1,200}$") {
            return (synth(400, "Invalid X-Ban-Connection"));
        }
        if (req.http.X-Tessera-Ban) {
            set req.http.X-Tessera-Ban = req.http.X-Tessera-Ban + " && ";
        }
        set req.http.X-Tessera-Ban = req.http.X-Tessera-Ban + "obj.http.X-Connection-Key == " + req.http.X-Ban-Connection;
    }
}

sub tessera_ban_term_credential {
    if (req.http.X-Ban-Credential) {
        if (req.http.X-Ban-Credential !~ "^[A-Za-z0-9._:-]{1,200}$") {
            return (synth(400, "Invalid X-Ban-Credential"));
        }
        if (req.http.X-Tessera-Ban) {
            set req.http.X-Tessera-Ban = req.http.X-Tessera-Ban + " && ";
        }
        set req.http.X-Tessera-Ban = req.http.X-Tessera-Ban + "obj.http.X-Credential-Key == " + req.http.X-Ban-Credential;
    }
}
