"""The web chat in a real headless Chromium (Debian's `chromium`, driven by Playwright).

Set SCREENSHOT_DIR to keep the screenshots (docs/screenshots holds the published ones).
Without a Chromium binary these tests skip locally and fail in CI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from bot.app import Runtime
from bot.settings import Settings
from tests.images import PDF, jpeg
from tests.webchat import base_url, running_bot

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PHONE = {"width": 390, "height": 780}
STORY = "Chị đã nấu cơm miễn phí cho người bệnh nghèo ở bệnh viện suốt ba năm nay."


@pytest.fixture(scope="module")
def chromium_path() -> str:
    if not Path(CHROMIUM).is_file():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Browser tests exercise the page, not storage: SQLite is enough here."""
    return f"sqlite+aiosqlite:///{tmp_path}/browser.db"


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[Runtime]:
    async with running_bot(settings) as runtime:
        yield runtime


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_FLAGS
        )
        yield chromium
        await chromium.close()


async def phone_page(browser: Browser, runtime: Runtime) -> Page:
    context = await browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                        has_touch=True, locale="vi-VN")  # fmt: skip
    page = await context.new_page()
    await page.goto(f"{base_url(runtime)}/chat")
    return page


async def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(folder) / f"{name}.png"))


def last_bot_message(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("li.msg.bot").last


async def test_citizen_reports_with_a_photo_on_a_phone(
    browser: Browser, bot: Runtime, tmp_path: Path
) -> None:
    page = await phone_page(browser, bot)
    await expect(last_bot_message(page)).to_contain_text("Chào mừng")
    await screenshot(page, "01-welcome")
    await page.get_by_role("button", name="📝 Báo cáo việc tốt").click()
    await page.get_by_role("button", name="Cá nhân", exact=True).click()
    await expect(last_bot_message(page)).to_contain_text("Họ và tên")
    composer = page.get_by_role("textbox")
    await composer.fill("Hoàng Thị <b>Lụa</b>")
    await composer.press("Enter")
    await page.get_by_role("button", name="Nông dân").click()
    await composer.fill("huu lung")
    await page.get_by_role("button", name="Gửi", exact=True).click()
    await page.get_by_role("button", name="Xã Hữu Lũng").click()
    await composer.fill(STORY)
    await composer.press("Enter")
    await expect(last_bot_message(page)).to_contain_text("ảnh")
    photo = tmp_path / "viec-tot.jpg"
    photo.write_bytes(jpeg(640, 480, "orange", gps=True))
    await page.set_input_files("#photo", str(photo))
    await expect(last_bot_message(page)).to_contain_text("1/10")
    await screenshot(page, "02-photo-received")
    await last_bot_message(page).get_by_role("button", name="✅ Xong").click()
    await page.get_by_role("button", name="Gửi ẩn danh").click()
    summary = last_bot_message(page)
    await expect(summary).to_contain_text("Hoàng Thị <b>Lụa</b>")
    await screenshot(page, "03-summary")
    await summary.get_by_role("button", name="✅ Xác nhận và gửi").click()
    await expect(last_bot_message(page)).to_contain_text("GS-")
    await screenshot(page, "04-submitted")

    await page.reload()
    await expect(last_bot_message(page)).to_contain_text("GS-")
    assert await page.locator("li.msg").count() > 10
    assert await page.locator("li.msg b").count() == 0  # user text never became markup


async def test_huge_and_wrong_uploads_get_a_clear_message(
    browser: Browser, bot: Runtime, tmp_path: Path
) -> None:
    page = await phone_page(browser, bot)
    await expect(last_bot_message(page)).to_contain_text("Chào mừng")
    huge = tmp_path / "huge.jpg"
    huge.write_bytes(b"\xff\xd8" + os.urandom(20 * 1024 * 1024))
    await page.get_by_role("button", name="📝 Báo cáo việc tốt").click()
    await page.get_by_role("button", name="Cá nhân", exact=True).click()
    await expect(last_bot_message(page)).to_contain_text("Họ và tên")
    await page.set_input_files("#photo", str(huge))
    await expect(page.locator("li.msg.bot").filter(has_text="quá lớn")).to_have_count(1)
    pdf = tmp_path / "giay-khen.pdf"
    pdf.write_bytes(PDF)
    await page.set_input_files("#photo", str(pdf))
    await expect(page.locator("li.msg.bot").filter(has_text="không phải là ảnh")).to_have_count(1)
    await screenshot(page, "05-wrong-file")


async def test_sandbox_offers_personas(browser: Browser, bot: Runtime) -> None:
    page = await phone_page(browser, bot)
    personas = page.get_by_role("navigation")
    await expect(personas).to_be_visible()
    await personas.get_by_role("link", name="Người kiểm duyệt").click()
    await expect(page.get_by_role("link", name="Người kiểm duyệt")).to_have_attribute(
        "aria-current", "page"
    )
    await expect(last_bot_message(page)).to_contain_text("Chào mừng")


async def test_sandbox_moderator_approves_in_the_browser(browser: Browser, bot: Runtime) -> None:
    context = await browser.new_context(viewport=PHONE, device_scale_factor=2, locale="vi-VN")
    moderator = await context.new_page()
    await moderator.goto(f"{base_url(bot)}/chat?as=moderator")
    await expect(last_bot_message(moderator)).to_contain_text("Chào mừng")
    citizen = await context.new_page()
    await citizen.goto(f"{base_url(bot)}/chat")
    await expect(last_bot_message(citizen)).to_contain_text("Chào mừng")
    composer = citizen.get_by_role("textbox")
    await citizen.get_by_role("button", name="📝 Báo cáo việc tốt").click()
    await citizen.get_by_role("button", name="Tập thể", exact=True).click()
    await expect(last_bot_message(citizen)).to_contain_text("Tên")
    await composer.fill("Tổ dân phòng thôn Nà Pàn")
    await composer.press("Enter")
    await citizen.get_by_role("button", name="Bảo vệ dân phố, dân phòng").click()
    await composer.fill("mau son")
    await composer.press("Enter")
    await citizen.get_by_role("button", name="Xã Mẫu Sơn", exact=False).click()
    await composer.fill(STORY)
    await composer.press("Enter")
    await last_bot_message(citizen).get_by_role("button", name="Bỏ qua").click()
    await citizen.get_by_role("button", name="Gửi ẩn danh").click()
    await last_bot_message(citizen).get_by_role("button", name="✅ Xác nhận và gửi").click()
    await expect(last_bot_message(citizen)).to_contain_text("GS-")

    card = moderator.locator("li.msg.bot").filter(has_text="Tổ dân phòng thôn Nà Pàn")
    await expect(card).to_have_count(1, timeout=15000)
    await screenshot(moderator, "06-moderator-card")
    await card.get_by_role("button", name="✅ Duyệt").click()
    await expect(card.get_by_role("button", name="📜 Lịch sử")).to_be_visible(timeout=15000)
    await expect(last_bot_message(citizen)).to_contain_text("duyệt", timeout=15000)
    await screenshot(moderator, "07-card-after-approval")


async def test_sandbox_admin_announces_and_the_subscriber_receives_it(
    browser: Browser, bot: Runtime
) -> None:
    context = await browser.new_context(viewport=PHONE, device_scale_factor=2, locale="vi-VN")
    subscriber = await context.new_page()
    await subscriber.goto(f"{base_url(bot)}/chat?as=subscriber")
    await expect(last_bot_message(subscriber)).to_contain_text("Chào mừng")
    await subscriber.get_by_role("button", name="🔔 Đăng ký nhận tin").click()
    await expect(last_bot_message(subscriber)).to_contain_text("Đăng ký nhận tin của bạn")
    await screenshot(subscriber, "08-subscriber-settings")

    admin = await context.new_page()
    await admin.goto(f"{base_url(bot)}/chat?as=admin")
    await expect(last_bot_message(admin)).to_contain_text("Chào mừng")
    composer = admin.get_by_role("textbox")
    await composer.fill("/announce")
    await composer.press("Enter")
    await expect(last_bot_message(admin)).to_contain_text("nội dung thông báo")
    await composer.fill("Mời bà con gửi gương người tốt, việc tốt của thôn mình trước ngày 31/12.")
    await composer.press("Enter")
    await last_bot_message(admin).get_by_role("button", name="Bỏ qua").click()
    await last_bot_message(admin).get_by_role("button", name="Tất cả người nhận tin").click()
    await last_bot_message(admin).get_by_role("button", name="🗺️ Cả tỉnh").click()
    await expect(last_bot_message(admin)).to_contain_text("Gửi ngay")
    await screenshot(admin, "09-announcement-preview")
    await last_bot_message(admin).get_by_role("button", name="📣 Gửi ngay").click()

    announcement = subscriber.locator("li.msg.bot").filter(has_text="trước ngày 31/12")
    await expect(announcement).to_have_count(1, timeout=20000)
    await screenshot(subscriber, "10-announcement-received")
    await expect(last_bot_message(admin)).to_contain_text("đã xong", timeout=20000)
