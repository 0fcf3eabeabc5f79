//! Every nginx configuration the AI stack writes, in one place: the gateway's and the git
//! host's server (written by `up`, `phase::ai_stack`), and the gateway's location of every static
//! route and one upstream route (written by `serve gateway`). Each nginx runs with its own prefix folder (`nginx -p DIR -c FILE`).

use super::units::HTTP_PORT;

/// Where git's smart-HTTP backend is on the VMs (Debian's `git` package).
pub const GIT_HTTP_BACKEND: &str = "/usr/lib/git-core/git-http-backend";

/// The pid file of an nginx run with prefix `dir` (named by its config's `pid`).
pub fn pid_file(dir: &str) -> String {
    format!("{dir}/nginx.pid")
}

/// The top of a config for an nginx run with prefix `dir`: pid, logs and temp paths under it.
pub fn top(dir: &str) -> String {
    format!(
        "# Written by tfgrid-compose (ai_stack); started as `nginx -p {dir} -c THIS -e {dir}/error.log`.\n\
         worker_processes 1;\npid {};\nerror_log {dir}/error.log;\nevents {{ \
         worker_connections 512; }}\n\
         http {{\n  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n  \
         access_log {dir}/access.log;\n\
         \x20 client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n  \
         fastcgi_temp_path {dir}/fastcgi;\n\
         \x20 scgi_temp_path {dir}/scgi;\n  uwsgi_temp_path {dir}/uwsgi;\n  server_tokens off;\n",
        pid_file(dir)
    )
}

/// The gateway's nginx: a landing page, `/git/` proxied to the git host at `git_addr`, and the
/// routes `serve gateway` writes under `gw_dir/routes/`.
pub fn gateway_conf(prefix: &str, gw_dir: &str, git_addr: &str) -> String {
    format!(
        "{}  server {{\n    listen {HTTP_PORT} default_server;\n    location = / {{ default_type text/plain; return 200 \"tfgrid-compose AI stack\\n\"; }}\n\
             \x20   location /git/ {{ proxy_pass http://{}/; client_max_body_size 100m; }}\n    \
             include {gw_dir}/routes/*.conf;\n  }}\n}}\n",
        top(prefix),
        git_addr
    )
}

/// The git host's nginx: the repository API (and its `/metrics`) on `127.0.0.1:api_port`, and the repositories in
/// `repos` over smart HTTP through fcgiwrap at `socket`; a push needs `Authorization: token T`
/// with T one of `tokens` (two while `projects rotate-tokens` runs).
pub fn git_conf(
    prefix: &str,
    api_port: u16,
    tokens: &[String],
    repos: &str,
    socket: &str,
) -> String {
    // A key is `token ` and 64 hex digits: past the default bucket of 64 bytes ("could not
    // build map_hash, you should increase map_hash_bucket_size: 64").
    let known: String = tokens
        .iter()
        .map(|t| format!("    \"token {t}\" \"\";\n"))
        .collect();
    format!(
        "{}  map_hash_bucket_size 128;\n  map $http_authorization $push_unknown {{\n    default x;\n\
         {known}  }}\n  server {{\n    \
             listen {HTTP_PORT} default_server;\n    client_max_body_size 100m;\n\
             \x20   location /api/v1/ {{ proxy_pass http://127.0.0.1:{api_port}; }}\n\
             \x20   location = /metrics {{ proxy_pass http://127.0.0.1:{api_port}; }}\n\
             \x20   location / {{\n      set $push \"\";\n      if ($arg_service = \
             git-receive-pack) {{ set $push w; }}\n      if ($uri ~ /git-receive-pack$) {{ set \
             $push w; }}\n\
             \x20     set $push \"${{push}}${{push_unknown}}\";\n      if ($push = wx) {{ return 401; }}\n\
             \x20     include /etc/nginx/fastcgi_params;\n      fastcgi_param SCRIPT_FILENAME \
             {GIT_HTTP_BACKEND};\n      fastcgi_param GIT_PROJECT_ROOT {repos};\n\
             \x20     fastcgi_param GIT_HTTP_EXPORT_ALL \"\";\n      fastcgi_param PATH_INFO \
             $uri;\n      fastcgi_pass unix:{socket};\n    }}\n  }}\n}}\n",
        top(prefix),
    )
}

/// One route of the gateway: `/{path}` redirects to `/{path}/`, which serves `body` (an
/// `alias` of a published site, or a `proxy_pass`).
pub fn route(path: &str, body: &str) -> String {
    format!(
        "# route {path}, written by tfgrid-compose serve gateway\nlocation = /{path} {{ return 301 \
            /{path}/; }}\nlocation /{path}/ {{\n    {body}\n}}\n"
    )
}

/// The one location that serves every static route: `/NAME/` from `links/NAME`, a link to the
/// route's site that `serve gateway` writes, so a static route comes and goes with no reload.
/// Longer prefixes (an upstream route's `location /NAME/`, `/git/`) and exact matches win over
/// it (nginx's location matching: <https://nginx.org/en/docs/http/ngx_http_core_module.html#location>);
/// `/NAME` is redirected to `/NAME/` by nginx itself, with a relative `Location`.
pub fn static_routes(links: &str) -> String {
    format!(
        "# static routes, written by tfgrid-compose serve gateway: /NAME/ is {links}/NAME, a link \
            to its site\nlocation / {{\n    root {links};\n    index index.html;\n    \
            absolute_redirect off;\n}}\n"
    )
}

/// A route's body for an upstream `url`.
pub fn upstream_body(url: &str) -> String {
    format!(
        "proxy_pass {url};\n    proxy_set_header Host $host;\n    proxy_set_header X-Forwarded-For \
            $remote_addr;"
    )
}
