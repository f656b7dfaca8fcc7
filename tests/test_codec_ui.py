"""The Temporal Web UI of ``tandem dev`` shows a tandem's payloads decoded when
TANDEM_PAYLOAD_KEYS is set: the dev stack runs the codec server and starts the dev server with
its UI pointed at it, and a headless Chromium (Debian's, driven by Playwright) opens the
tandem's page. The screenshot goes to TANDEM_SCREENSHOT_DIR when set (else the test's tmp dir).
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import uuid
from pathlib import Path

import asyncpg
import pytest
from PIL import Image
from pydantic import SecretStr

from starter import dev_cmd
from starter.dev_cmd import Running, run_stack
from starter.tandem_cmds import start_tandem
from tandem.models import TandemStatus
from tandem.settings import Settings
from tests.support import free_port, mentee, mentor, put_people, uid, wait_status
from workflows.codec import ENCODING
from workflows.ids import workflow_id

CHROMIUM = os.environ.get("TANDEM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEY = base64.b64encode(bytes(range(7, 39))).decode()

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(),
    reason=f"no Chromium binary at {CHROMIUM} (Debian: apt-get install chromium)",
)


def screenshot_path(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("TANDEM_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "codec-ui-tandem.png"


async def test_the_web_ui_of_tandem_dev_shows_the_decoded_tandem(
    tmp_path: Path, db: asyncpg.Pool, db_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from playwright.async_api import async_playwright, expect

    settings = Settings(
        home=tmp_path / "home",
        database_url=db_dsn,
        temporal_address=f"127.0.0.1:{free_port()}",
        temporal_ui_port=free_port(),
        smtp_port=free_port(),
        gateway_port=free_port(),
        codec_port=free_port(),
        codec_token=None,
        payload_keys=SecretStr(f"ui1:{KEY}"),
        task_queue=f"tq-{uuid.uuid4().hex[:8]}",
        reply_token_secret=SecretStr("test-secret"),
    )
    stop = asyncio.Event()
    up: asyncio.Future[Running] = asyncio.get_running_loop().create_future()
    stack = asyncio.create_task(
        run_stack(settings, stop=stop, handle_signals=False, on_ready=up.set_result)
    )
    try:
        running = await asyncio.wait_for(asyncio.shield(up), timeout=120)
        assert running.codec is not None
        assert running.temporal.codec_endpoint == running.codec.url
        dev_cmd._print_ready(settings, running)  # the start banner names the codec server
        assert f"Codec server  {running.codec.url}" in capsys.readouterr().out

        s1, m1 = uid("S"), uid("M")
        await put_people(db, [mentor(m1)], [mentee(s1)])
        await start_tandem(running.client, mentee(s1), settings)
        await wait_status(running.client, s1, TandemStatus.INTRODUCED, timeout=60)
        raw = await running.client.get_workflow_handle(workflow_id(s1)).fetch_history()
        started = raw.events[0].workflow_execution_started_event_attributes
        assert started.input.payloads[0].metadata["encoding"] == ENCODING  # stored encrypted

        page_url = (
            f"http://127.0.0.1:{settings.temporal_ui_port}/namespaces/default/workflows/"
            f"{workflow_id(s1)}"
        )
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport={"width": 1400, "height": 1000},
            )
            try:
                page = context.pages[0] if context.pages else await context.new_page()
                await page.goto(page_url, wait_until="domcontentloaded", timeout=60_000)
                # Only the codec server can turn these into text: on the server the input
                # (the tandem's state and rules) and the summaries are ciphertext.
                decoded_input = page.get_by_role("textbox", name="Input")
                await expect(decoded_input).to_contain_text(f'"mentee_id": "{s1}"', timeout=60_000)
                await expect(decoded_input).to_contain_text('"first_meeting_window": "P30D"')
                await expect(page.get_by_text("carry_out • record: enrolled").first).to_be_visible()
                shot = screenshot_path(tmp_path)
                await page.screenshot(path=str(shot), full_page=True)
                shown = await page.content()
                await page.get_by_role("tab", name="User Metadata").click()
                summary = (
                    page.frame_locator("iframe")
                    .first.get_by_text(  # rendered markdown
                        f"Tandem of mentee {s1} (stipendium-hausarzt)"
                    )
                    .first
                )  # the static summary; the details' first line says it again
                await expect(summary).to_be_visible(timeout=30_000)
            finally:
                await context.close()
    finally:
        stop.set()
        code = await asyncio.wait_for(stack, timeout=120)
    assert code == 0
    encrypted_marks = ("binary/encrypted", base64.b64encode(ENCODING).decode().rstrip("="))
    assert not [mark for mark in encrypted_marks if mark in shown]

    assert shot.stat().st_size > 10_000
    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=256)
    assert colours is None or len(colours) > 16, "the screenshot is (nearly) blank"
