"""HTML of the sandbox pages: server-rendered state plus the page's own scripts."""

from __future__ import annotations

import html
import re
from typing import Any

from sandbox.dataset import NoteSpec
from sandbox.site.jsliteral import to_js_literal
from sandbox.site.shapes import Urls

# Stand-ins for the runtime/analytics scripts the real page carries before the state.
_HEAD_SCRIPTS = """<script formula-runtime>window.__FORMULA__={version:"4.0.16",app:"xhs-pc-web"};</script>
<script data-apm-fmp-pre-module>window.__APM_FMP__={start:Date.now(),marks:[]};</script>"""
_TAIL_SCRIPT = '<script>window.__SSR__=true;window.__VUE_DEVTOOLS_HIDE__=true;if(typeof window.__INITIAL_STATE__!=="undefined"){document.documentElement.dataset.ssr="1"}</script>'
_STYLE = """<style>
body{font-family:"Noto Sans CJK SC",sans-serif;margin:0;background:#fff;color:#333}
.note-item{display:block;height:240px;margin:12px;padding:12px;border:1px solid #eee;border-radius:12px}
.note-item img{height:160px}
#sentinel{height:40px}
.note-scroller{height:600px;overflow-y:auto;border-top:1px solid #eee}
.comment-item{padding:8px 0;min-height:48px}.comment-item-sub{margin-left:40px}
.show-more{color:#13386c;cursor:pointer;margin-left:40px}
</style>"""

_TOPIC = re.compile(r"#([^#\[\]]+)\[话题\]#")


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def _state_script(state: dict[str, Any]) -> str:
    return f"<script>window.__INITIAL_STATE__={to_js_literal(state)}</script>"


def _document(title: str, meta: str, body: str, state: dict[str, Any], scripts: str = "") -> str:
    return (
        "<!doctype html><html><head>"
        f'<meta charset="utf-8">{_HEAD_SCRIPTS}'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"{meta}<title>{html.escape(title)}</title>{_STYLE}</head>"
        f'<body><div id="app">{body}</div>{_state_script(state)}{_TAIL_SCRIPT}{scripts}</body></html>'
    )


def note_page(note: NoteSpec, state: dict[str, Any], urls: Urls, signing: str) -> str:
    """A note page: og:* meta tags, server-rendered content, the state script, and the
    comment script (``_COMMENTS_JS``)."""
    image_urls = [
        img["urlDefault"]
        for img in state["note"]["noteDetailMap"][note.note_id]["note"]["imageList"]
    ]
    description = " ".join(_TOPIC.sub(r"#\1", note.desc).split())
    meta = "".join(
        [
            '<meta name="og:type" content="article"><meta name="og:site_name" content="小红书">',
            f'<meta name="keywords" content="{_attr(", ".join(note.tags))}">',
            f'<meta name="description" content="{_attr(description)}">',
            f'<meta name="og:title" content="{_attr(note.title)} - 小红书">',
            *(f'<meta name="og:image" content="{_attr(u)}">' for u in image_urls),
            f'<meta name="og:url" content="{_attr(urls.site)}/explore/{note.note_id}">',
            f'<meta name="og:xhs:note_comment" content="{_attr(note.interact["comments"])}">',
            f'<meta name="og:xhs:note_like" content="{_attr(note.interact["liked"])}">',
            f'<meta name="og:xhs:note_collect" content="{_attr(note.interact["collected"])}">',
        ]
    )
    images = "".join(f'<img class="note-slider-img" src="{_attr(u)}">' for u in image_urls)
    body = (
        f'<div class="note-container"><div class="media-container">{images}</div>'
        f'<div id="detail-title" class="title">{html.escape(note.title)}</div>'
        f'<div id="detail-desc" class="desc">{html.escape(note.desc)}</div>'
        f'<a class="author" href="/user/profile/{note.user.user_id}">{html.escape(note.user.nickname)}</a>'
        f'<div class="note-scroller" id="noteScroller"><div class="comments-container">'
        f'<div class="total">共 {html.escape(note.interact["comments"])} 条评论</div>'
        '<div class="list-container" id="comments"></div>'
        '<div class="end-container" id="commentsEnd"></div></div></div></div>'
    )
    query = to_js_literal({"noteId": note.note_id, "xsecToken": note.xsec_token})
    script = (
        f"<script>{signing}</script><script>(function (Q) {{{_COMMENTS_JS}}})({query});</script>"
    )
    return _document(f"{note.title} - 小红书", meta, body, state, script)


# The comment list of a note page, as the real page behaves: the first page on load, the
# next when the list (``#noteScroller``) is scrolled to its end, a root's replies when
# its "展开 N 条回复" control is clicked. Calls are signed by the page's own script.
_COMMENTS_JS = """
  var list = document.getElementById("comments"), end = document.getElementById("commentsEnd");
  var scroller = document.getElementById("noteScroller");
  var cursor = "", hasMore = true, loading = false;
  var base = "note_id=" + Q.noteId + "&image_formats=jpg,webp,avif&xsec_token=" + encodeURIComponent(Q.xsecToken);
  function item(c, cls) {
    var div = document.createElement("div");
    div.className = cls;
    div.id = "comment-" + c.id;
    div.dataset.commentId = c.id;
    var name = document.createElement("a");
    name.className = "name";
    name.textContent = c.user_info.nickname;
    if ((c.show_tags || []).indexOf("is_author") >= 0) name.textContent += " 作者";
    var text = document.createElement("span");
    text.className = "note-text";
    text.textContent = c.content;
    var info = document.createElement("div");
    info.className = "info";
    info.textContent = (c.ip_location || "") + " 赞 " + c.like_count;
    div.appendChild(name); div.appendChild(text); div.appendChild(info);
    (c.pictures || []).forEach(function (p) {
      var img = document.createElement("img"); img.src = p.url_default; img.width = 80; div.appendChild(img);
    });
    return div;
  }
  function showMore(parent, c, cursorNow, left) {
    var more = document.createElement("div");
    more.className = "show-more";
    more.textContent = "展开 " + left + " 条回复";
    var replyCursor = cursorNow, busy = false;
    more.addEventListener("click", function () {
      if (busy) return;
      busy = true;
      var url = "/api/sns/web/v2/comment/sub/page?note_id=" + Q.noteId + "&root_comment_id=" + c.id +
        "&num=10&cursor=" + replyCursor + "&image_formats=jpg,webp,avif&top_comment_id=&xsec_token=" +
        encodeURIComponent(Q.xsecToken);
      window._sbxApi("GET", url, null).then(function (res) {
        busy = false;
        if (!res || res.code !== 0) return;
        res.data.comments.forEach(function (r) { parent.insertBefore(item(r, "comment-item comment-item-sub"), more); });
        replyCursor = res.data.cursor;
        left = Math.max(0, left - res.data.comments.length);
        if (res.data.has_more) more.textContent = "展开更多回复"; else more.remove();
      }, function () { busy = false; });
    });
    parent.appendChild(more);
  }
  function load() {
    if (loading || !hasMore) return;
    loading = true;
    window._sbxApi("GET", "/api/sns/web/v2/comment/page?" + base + "&cursor=" + cursor + "&top_comment_id=", null).then(function (res) {
      loading = false;
      if (!res || res.code !== 0) { hasMore = false; end.textContent = "加载失败"; return; }
      res.data.comments.forEach(function (c) {
        var wrap = document.createElement("div");
        wrap.className = "parent-comment";
        wrap.appendChild(item(c, "comment-item"));
        var replies = document.createElement("div");
        replies.className = "reply-container";
        c.sub_comments.forEach(function (r) { replies.appendChild(item(r, "comment-item comment-item-sub")); });
        if (c.sub_comment_has_more) showMore(replies, c, c.sub_comment_cursor, Math.max(0, parseInt(c.sub_comment_count, 10) - c.sub_comments.length));
        wrap.appendChild(replies);
        list.appendChild(wrap);
      });
      cursor = res.data.cursor;
      hasMore = res.data.has_more;
      end.textContent = hasMore ? "" : "- THE END -";
      // A list too short to scroll gets no scroll event: keep filling it.
      if (hasMore && scroller.scrollHeight <= scroller.clientHeight + 40) setTimeout(load, 0);
    }, function () { loading = false; });
  }
  scroller.addEventListener("scroll", function () {
    if (scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 40) load();
  });
  load();
"""


def gone_page(state: dict[str, Any]) -> str:
    body = '<div class="error-container"><p>当前笔记暂时无法浏览</p><a href="/explore">返回首页</a></div>'
    return _document("小红书 - 你的生活指南", "", body, state)


def home_page(notes: list[NoteSpec], urls: Urls, state: dict[str, Any]) -> str:
    cards = "".join(
        f'<a class="note-item" href="{_attr(urls.note(n, "pc_feed"))}">{html.escape(n.title)}</a>'
        for n in notes
    )
    return _document(
        "小红书 - 你的生活指南", "", f'<div class="feeds-container">{cards}</div>', state
    )


def login_page(redirect: str, state: dict[str, Any]) -> str:
    body = (
        '<div class="login-container"><h1>登录后查看更多内容</h1>'
        f'<p class="redirect" data-redirect="{_attr(redirect)}">手机号登录 / 扫码登录</p></div>'
    )
    return _document("小红书 - 登录", "", body, state)


_CARD_JS = """
function card(id, token, title, source) {
  var a = document.createElement("a");
  a.className = "note-item";
  a.href = "/explore/" + id + "?xsec_token=" + encodeURIComponent(token) + "&xsec_source=" + source;
  a.textContent = title;
  return a;
}
function nearBottom() {
  return document.getElementById("sentinel").getBoundingClientRect().top < window.innerHeight + 400;
}
function observe(load) {
  var sentinel = document.getElementById("sentinel");
  if (window.IntersectionObserver) {
    new IntersectionObserver(function (entries) {
      if (entries.some(function (e) { return e.isIntersecting; })) load();
    }).observe(sentinel);
  }
  window.addEventListener("scroll", function () {
    if (window.innerHeight + window.scrollY >= document.body.scrollHeight - 400) load();
  });
}
"""


def search_page(keyword: str, state: dict[str, Any], signing: str, search_id: str) -> str:
    script = f"""<script>{signing}</script><script>(function () {{
{_CARD_JS}
  var feeds = document.getElementById("feeds");
  var q = {{keyword: {to_js_literal(keyword)}, page: 1, page_size: 20, search_id: "{search_id}",
           sort: "general", note_type: 0}};
  var loading = false, hasMore = true;
  function load() {{
    if (loading || !hasMore) return;
    loading = true;
    window._sbxApi("POST", "/api/sns/web/v1/search/notes", q).then(function (res) {{
      loading = false;
      if (!res || res.code !== 0) {{ hasMore = false; return; }}
      res.data.items.forEach(function (it) {{
        if (it.model_type === "note") feeds.appendChild(card(it.id, it.xsec_token, it.note_card.display_title, "pc_search"));
      }});
      hasMore = res.data.has_more;
      q = Object.assign({{}}, q, {{page: q.page + 1}});
      // Keep filling while the end of the list is still in view (no scroll event comes).
      if (nearBottom()) setTimeout(load, 0);
    }}, function () {{ loading = false; }});
  }}
  observe(load);
  load();
}})();</script>"""
    body = f'<div class="search-layout"><h2>{html.escape(keyword)}</h2><div id="feeds"></div><div id="sentinel"></div></div>'
    return _document(f"{keyword} - 小红书搜索", "", body, state, script)


def profile_page(user_id: str, nickname: str, state: dict[str, Any], signing: str) -> str:
    first = state["user"]["notes"][0]
    query = state["user"]["noteQueries"][0]
    cards = "".join(
        f'<a class="note-item" href="/explore/{n["id"]}?xsec_token={_attr(n["xsecToken"])}&amp;xsec_source=pc_user">'
        f"{html.escape(n['noteCard']['displayTitle'])}</a>"
        for n in first
    )
    script = f"""<script>{signing}</script><script>(function () {{
{_CARD_JS}
  var feeds = document.getElementById("feeds");
  var cursor = "{query["cursor"]}", hasMore = {"true" if query["hasMore"] else "false"}, loading = false;
  function load() {{
    if (loading || !hasMore) return;
    loading = true;
    var url = "/api/sns/web/v1/user_posted?num=30&cursor=" + cursor + "&user_id={user_id}" +
      "&image_formats=jpg,webp,avif&xsec_token=&xsec_source=pc_note";
    window._sbxApi("GET", url, null).then(function (res) {{
      loading = false;
      if (!res || res.code !== 0) {{ hasMore = false; return; }}
      res.data.notes.forEach(function (n) {{
        feeds.appendChild(card(n.note_id, n.xsec_token, n.display_title, "pc_user"));
      }});
      cursor = res.data.cursor;
      hasMore = res.data.has_more;
      if (nearBottom()) setTimeout(load, 0);
    }}, function () {{ loading = false; }});
  }}
  observe(load);
}})();</script>"""
    body = (
        f'<div class="user-page"><h1 class="user-name">{html.escape(nickname)}</h1>'
        f'<div id="feeds">{cards}</div><div id="sentinel"></div></div>'
    )
    return _document(f"{nickname}的个人主页 - 小红书", "", body, state, script)
