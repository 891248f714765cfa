"""Posts a shared example and reads a feed with the Python client that openapi-python-client
generated from docs/openapi.json (tests/it/contract.rs generates it, then runs this).

    python3 generated_client.py BASE_URL EXAMPLE_FILE
"""
import json
import sys

from xietong_client import AuthenticatedClient
from xietong_client.api.contract import me
from xietong_client.api.feeds import feed_events
from xietong_client.api.messages import post_message
from xietong_client.models import NativeMessage, ProblemDocument, Receipt

base, example_file = sys.argv[1], sys.argv[2]
sender = AuthenticatedClient(base_url=base, token="demo-ip_office-330100")
print("me", me.sync(client=sender).id)

receipt = post_message.sync(client=sender, body=NativeMessage.from_dict(json.load(open(example_file))))
assert isinstance(receipt, Receipt), receipt
print("posted", receipt.id, " ".join(sorted(f"{r.id}:{r.role}" for r in receipt.recipients)))

reader = AuthenticatedClient(base_url=base, token="demo-procuratorate-330100")
page = feed_events.sync(client=reader, feed="procuratorate:330100")
event = next(e.event for e in page.events if e.event.id == receipt.id)
print("read", event.id, event.type_, event.data.case.number)

refused = feed_events.sync(client=reader, feed="ip_office:330100")
assert isinstance(refused, ProblemDocument), refused
print("refused", refused.status, refused.code)
