import Config
import Foundation
import Metadata
import Platform
import Postgres

// The admin CLI (CARTO's admin console): migrate, create-admin, tokens, check-config.
let usage = """
    usage: tessera <command> [--config FILE] [options]
      migrate                                   apply pending metadata migrations
      check-config                              validate the configuration file and environment
      config-docs [--readme README.md]          the table of configuration keys (rewrites README's section)
      init-secret PATH                          write a fresh secret key file (mode 0600)
      create-admin --email E (--password P | --password-file F) [--organization NAME] [--if-missing]
      tokens create --email E [--connection C] [--source S] [--apis sql,maps] [--expires ISO8601]
      tokens list --email E
      tokens delete --email E --id ID
      tileset create --email E --name SCHEMA.TILESET (--table T | --query SQL) [--connection carto_dw]
                     [--minzoom 0] [--maxzoom 10] [--spatial-column geom] [--columns a,b]
      warehouse-register                        (re)register the first organisation's carto_dw from TESSERA_WAREHOUSE_URL
      warehouse-migrate --email E [--connection carto_dw]   install Tessera's SQL (quadbin functions, tessera_h3 where available) in a warehouse
      jobs list [--queue Q] [--state S] | jobs show|retry|cancel ID   the job queue
      lds load-places [--file geocode.gz] [--email E [--connection C]]   load GeoNames places for local geocoding
      lds provider set --email E --service geocoding|isolines|routing --provider local|nominatim|osrm|valhalla
                       [--url U] [--key K | --key-file F] [--timeout-ms N]  |  lds provider list --email E
      lds quota set --email E --service S --quota N|default   an organisation's monthly quota
      lds load-roads --osm FILE --email E [--connection C]   road graph (OSM XML) for local routing and isolines
      status                                    schema version, counts, connections the policy refuses
      selftest [--base-url https://127.0.0.1] [--import-url URL] [--fixtures DIR] [--keep]
                                                one real use of every program through nginx, in an organisation
                                                and schema of its own that it removes; one line per check
      password-reset-link --email E [--base-url URL]   print a one-time (1 h) password reset link for a user
      backup [--out DIR|FILE] [--passphrase-file F] [--config-dir /etc/tessera] [--keep N]
                                                one archive: databases, role passwords, secret key, config
      admin-password [--file /etc/tessera/admin-password] [--password-file F]   the admin console's operator password (else stdin)
      admin-apply --staged F                    (tessera-admin-apply.service) install a console-staged config, restart what it affects
      restore ARCHIVE [--passphrase-file F] [--config-dir /etc/tessera]   verify, then restore onto this install
    """

var cli = CommandLineArguments(CommandLine.arguments.dropFirst())
do {
    try run(&cli)
    exit(0)
} catch let e as CLIError {
    FileHandle.standardError.write(Data("tessera: \(e.message)\n".utf8))
    exit(e.code)
} catch let e as PGError {
    FileHandle.standardError.write(Data("tessera: database error: \(e.message)\n".utf8))
    exit(1)
} catch {
    FileHandle.standardError.write(Data("tessera: \(error)\n".utf8))
    exit(1)
}
