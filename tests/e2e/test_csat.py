"""
Satisfaction survey: resolving a webhook ticket tells its customer, with
one-tap rating links; GET /csat/TOKEN?score=N records the rating, and the
report counts it.
"""

import http.client
import re
import urllib.parse

from conftest import wait_until, webhook_msg


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def test_resolve_sends_survey_and_rating_is_reported(make_gateway,
                                                     make_receiver):
    recv = make_receiver()
    g = make_gateway().start()
    r = g.post("shop", webhook_msg("s-1", reply_url=recv.url("/r")))
    tid = r.json["ticket"]
    g.ok("resolve", tid, "duplicate", "charge")

    def resolved_message():
        return [q.json for q in recv.got()
                if q.json and "resolved" in q.json.get("body", "")]
    wait_until(resolved_message, what="the resolved message")
    body = resolved_message()[0]["body"]
    urls = re.findall(r"http://\S+/csat/[0-9a-f]{32}\?score=[1-5]", body)
    assert len(urls) == 5, body
    link = urllib.parse.urlparse([u for u in urls if u.endswith("=4")][0])
    path = link.path + "?" + link.query

    # Unrated, the report has no CSAT.
    rep = g.json("report", "--json")
    assert rep["csat"]["other"] == {"mean": None, "count": 0}, rep["csat"]

    status, page = get(g.port, path)
    assert status == 200 and "Thank you" in page, (status, page)
    rep = g.json("report", "--json")
    assert rep["csat"]["other"]["count"] == 1, rep["csat"]
    assert rep["csat"]["other"]["mean"] == 4.0, rep["csat"]
    ev = [e for e in g.show(tid)["events"] if e["type"] == "csat"]
    assert ev and ev[-1]["detail"] == {"score": 4}, ev

    # A later tap replaces the rating, it does not add one.
    status, _ = get(g.port, path.replace("score=4", "score=2"))
    assert status == 200
    rep = g.json("report", "--json")
    assert rep["csat"]["other"] == {"mean": 2.0, "count": 1}, rep["csat"]


def test_bad_survey_links(make_gateway):
    g = make_gateway().start()
    assert get(g.port, "/csat/" + "0" * 32 + "?score=3")[0] == 404
    assert get(g.port, "/csat/not-a-token?score=3")[0] == 404
    for bad in ("", "?score=", "?score=0", "?score=6", "?score=5x"):
        assert get(g.port, "/csat/" + "a" * 32 + bad)[0] == 400, bad
