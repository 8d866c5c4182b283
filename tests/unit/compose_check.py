#!/usr/bin/python3
"""Independent reading of a message written by mx_compose_write().

usage: compose_check.py FILE
Parses FILE with Python's email package (policy=default) and prints one
JSON object: decoded headers, the MIME structure, and per leaf part its
type, charset, transfer encoding, file name, decoded SHA-256 and (text
parts) the decoded text.  Defects found by the parser are listed.
"""
import hashlib
import json
import sys
from email import policy
from email.parser import BytesParser


def addrs(msg, name):
    h = msg[name]
    if h is None:
        return None
    return [[a.display_name, a.addr_spec] for a in h.addresses]


def structure(part):
    if part.is_multipart():
        return [part.get_content_type()] + [structure(p) for p in part.iter_parts()]
    return part.get_content_type()


def main():
    with open(sys.argv[1], 'rb') as f:
        msg = BytesParser(policy=policy.default).parse(f)
    defects = [type(d).__name__ for d in msg.defects]
    leaves = []
    for part in msg.walk():
        defects += [type(d).__name__ for d in part.defects if part is not msg]
        if part.is_multipart():
            continue
        raw = part.get_payload(decode=True) or b''
        leaf = {
            'type': part.get_content_type(),
            'charset': part.get_content_charset(),
            'cte': part.get('content-transfer-encoding'),
            'filename': part.get_filename(),
            'disposition': part.get_content_disposition(),
            'sha256': hashlib.sha256(raw).hexdigest(),
            'size': len(raw),
        }
        if part.get_content_maintype() == 'text' and leaf['filename'] is None:
            # A base64 text part holds the canonical CRLF form, which
            # get_content() returns as it is; QP and 7bit come back with LF.
            leaf['text'] = part.get_content().replace('\r\n', '\n')
        leaves.append(leaf)
    out = {
        'defects': defects,
        'subject': str(msg['subject']) if msg['subject'] is not None else None,
        'from': addrs(msg, 'from'),
        'to': addrs(msg, 'to'),
        'cc': addrs(msg, 'cc'),
        'bcc': msg['bcc'] is not None,
        'message_id': msg['message-id'],
        'in_reply_to': msg['in-reply-to'],
        'references': msg['references'],
        'date': str(msg['date']) if msg['date'] is not None else None,
        'structure': structure(msg),
        'parts': leaves,
    }
    json.dump(out, sys.stdout, ensure_ascii=False)


main()
