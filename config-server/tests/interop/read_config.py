"""Reads configuration from config-server with the unmodified `config-client`
package (PyPI), the way a Python service would, and prints what it got as one
JSON document on stdout for the Rust test to check.

Usage: python read_config.py <server address> <app> <profile> <label>
"""

import json
import sys

from config.spring import ConfigClient


def main() -> None:
    address, app, profile, label = sys.argv[1:5]
    client = ConfigClient(address=address, app_name=app, profile=profile, label=label)
    client.get_config(timeout=10)
    secret = client.encrypt("from-python", timeout=10)
    out = {
        "url": client.url,
        "port": client.get("server.port"),
        "greeting": client.get("greeting"),
        "password": client.get("password"),
        "shared": client.get("shared"),
        "file": client.get_file("nginx.conf", timeout=10),
        "decrypted": client.decrypt(secret, timeout=10),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
