"""The web chat in a real headless Chromium (Debian's `chromium`, driven by Playwright).

Set SCREENSHOT_DIR to keep the screenshots (docs/screenshots holds the published ones).
Without a Chromium binary these tests skip locally and fail in CI.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Locator, Page, ViewportSize, async_playwright, expect
from sqlmodel import select

from bot.app import Runtime
from bot.settings import Settings
from models.tables import MediaFile
from tests.images import PDF, camera_jpeg, jpeg
from tests.test_storage_failure import read_only
from tests.webchat import Browser as ChatTab
from tests.webchat import base_url, running_bot
from tests.webchat import report_until_photos as protocol_report_until_photos

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PHONE: ViewportSize = {"width": 390, "height": 780}
SMALL_PHONE: ViewportSize = {"width": 320, "height": 640}
PHONES = pytest.mark.parametrize(
    "viewport", [SMALL_PHONE, PHONE], ids=lambda size: f"{size['width']}px"
)
TOUCH_TARGET_PX = 44
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


async def phone_page(
    browser: Browser, runtime: Runtime, viewport: ViewportSize = PHONE, path: str = "/chat"
) -> Page:
    context = await browser.new_context(viewport=viewport, device_scale_factor=2, is_mobile=True,
                                        has_touch=True, locale="vi-VN")  # fmt: skip
    page = await context.new_page()
    await page.goto(f"{base_url(runtime)}{path}")
    return page


async def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(folder) / f"{name}.png"))


def phone_shot(viewport: ViewportSize, what: str) -> str:
    return f"{11 if viewport is SMALL_PHONE else 12}-phone-{viewport['width']}-{what}"


def last_bot_message(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("li.msg.bot").last


async def report_until_photos(page: Page, name: str) -> None:
    """Start a report in the page and answer every question up to the photos."""
    await page.get_by_role("button", name="📝 Báo cáo việc tốt").click()
    await page.get_by_role("button", name="Cá nhân", exact=True).click()
    await expect(last_bot_message(page)).to_contain_text("Họ và tên")
    composer = page.get_by_role("textbox")
    await composer.fill(name)
    await composer.press("Enter")
    await page.get_by_role("button", name="Nông dân").click()
    await composer.fill("huu lung")
    await page.get_by_role("button", name="Gửi", exact=True).click()
    await page.get_by_role("button", name="Xã Hữu Lũng").click()
    await composer.fill(STORY)
    await composer.press("Enter")
    await expect(last_bot_message(page)).to_contain_text("ảnh")


async def send_photos(page: Page, *files: Path) -> None:
    """Choose photos with the camera button and send them from the preview."""
    await page.set_input_files("#photo", [str(file) for file in files])
    await page.get_by_role("button", name=f"Gửi ảnh ({len(files)})").click()


async def test_citizen_reports_with_a_photo_on_a_phone(
    browser: Browser, bot: Runtime, tmp_path: Path
) -> None:
    page = await phone_page(browser, bot)
    await expect(last_bot_message(page)).to_contain_text("Chào mừng")
    await screenshot(page, "01-welcome")
    await report_until_photos(page, "Hoàng Thị <b>Lụa</b>")
    photo = tmp_path / "viec-tot.jpg"
    photo.write_bytes(jpeg(640, 480, "orange", gps=True))
    await send_photos(page, photo)
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
    await send_photos(page, huge)
    await expect(page.locator("li.msg.bot").filter(has_text="quá lớn")).to_have_count(1)
    pdf = tmp_path / "giay-khen.pdf"
    pdf.write_bytes(PDF)
    await send_photos(page, pdf)
    await expect(page.locator("li.msg.bot").filter(has_text="không phải là ảnh")).to_have_count(1)
    await screenshot(page, "05-wrong-file")


async def assert_fits_and_is_touchable(page: Page, *controls: Locator) -> None:
    """Nothing sticks out sideways, and each control is a finger's size (WCAG: 44 px)."""
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"]  # type: ignore[index]
    for control in controls:
        await expect(control).to_be_visible()
        box = await control.bounding_box()
        assert box is not None and box["height"] >= TOUCH_TARGET_PX, (control, box)
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, (control, box)


@PHONES
async def test_sandbox_offers_every_persona_on_a_small_phone(
    browser: Browser, bot: Runtime, viewport: ViewportSize
) -> None:
    page = await phone_page(browser, bot, viewport, "/chat?as=subscriber")
    await expect(last_bot_message(page)).to_contain_text("Chào mừng")
    roles = page.get_by_role("combobox", name="Dùng thử: chọn vai")
    await expect(roles).to_have_value("subscriber")
    await expect(roles.locator("option")).to_have_text(
        ["Người dân", "Người dân thứ hai", "Người kiểm duyệt", "Người nhận tin", "Quản trị viên"]
    )
    switch = page.get_by_role("button", name="Đổi vai")
    menu = last_bot_message(page).get_by_role("button")
    camera = page.locator("#photo-label")
    await assert_fits_and_is_touchable(page, roles, switch, camera, menu.last)
    await expect(camera.locator("svg path")).to_have_count(1)  # drawn, not an emoji glyph
    await screenshot(page, phone_shot(viewport, "roles"))
    await roles.select_option("moderator")
    await switch.click()
    await expect(page).to_have_url(re.compile(r"\?as=moderator$"))
    await expect(page.get_by_role("combobox")).to_have_value("moderator")
    await expect(last_bot_message(page)).to_contain_text("Chào mừng")


async def test_several_photos_are_previewed_scaled_down_and_all_stored(
    browser: Browser, bot: Runtime, tmp_path: Path
) -> None:
    page = await phone_page(browser, bot, SMALL_PHONE)
    uploads: list[int] = []
    page.on(
        "request",
        lambda request: (
            uploads.append(len(request.post_data_buffer or b""))
            if "/chat/upload" in request.url
            else None
        ),
    )
    await expect(last_bot_message(page)).to_contain_text("Chào mừng")
    await report_until_photos(page, "Nông Văn Thắng")
    camera, small, unwanted = tmp_path / "IMG_4001.jpg", tmp_path / "nho.jpg", tmp_path / "x.jpg"
    camera.write_bytes(camera_jpeg(4800, 3600))
    small.write_bytes(jpeg(640, 480, "teal"))
    unwanted.write_bytes(jpeg(640, 480, "black"))
    await page.set_input_files("#photo", [str(camera), str(small), str(unwanted)])
    previews = page.get_by_role("region", name="Ảnh sắp gửi").get_by_role("img")
    await expect(previews).to_have_count(3)
    await assert_fits_and_is_touchable(page, page.get_by_role("button", name="Bỏ ảnh 3"))
    await screenshot(page, "11-phone-320-photo-preview")
    await assert_accessible(page)
    await page.get_by_role("button", name="Bỏ ảnh 3").click()
    await expect(previews).to_have_count(2)
    await page.get_by_role("button", name="Gửi ảnh (2)").click()
    await expect(last_bot_message(page)).to_contain_text("2/10")
    assert len(uploads) == 2
    assert uploads[0] < camera.stat().st_size / 3  # scaled down before it left the phone
    assert uploads[1] < 2 * small.stat().st_size  # a small photo goes as it is
    async with bot.sessions() as session:
        stored = (await session.exec(select(MediaFile))).all()
    assert sorted(max(image.width, image.height) for image in stored) == [640, 2560]
    await expect(page.get_by_role("region", name="Ảnh sắp gửi")).to_be_hidden()


async def assert_accessible(page: Page) -> None:
    """axe-core finds nothing serious or critical in the page as it is now."""
    results = await Axe().run(page)
    serious = [
        (violation["id"], len(violation["nodes"]))
        for violation in results.response["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    assert serious == []


async def citizen_reports_with_a_photo(runtime: Runtime, name: str) -> None:
    """A citizen's whole report with one photo, over the web chat's protocol."""
    tab = ChatTab(runtime, persona="citizen2")
    try:
        await tab.open()
        await protocol_report_until_photos(tab, name, "farmer", "chi lang", 6463, STORY)
        assert await tab.upload(jpeg(800, 600, "orange"), "lop-hoc.jpg", "image/jpeg") == 200
        await tab.next_message()
        for payload in ("r:photos:done", "r:identity:anonymous", "r:summary:confirm"):
            await tab.press(payload)
    finally:
        await tab.close()


@PHONES
async def test_moderator_card_with_a_photo_is_accessible(
    browser: Browser, bot: Runtime, viewport: ViewportSize
) -> None:
    moderator = await phone_page(browser, bot, viewport, "/chat?as=moderator")
    await expect(last_bot_message(moderator)).to_contain_text("Chào mừng")
    await citizen_reports_with_a_photo(bot, "Triệu Thị Mây")
    card = moderator.locator("li.msg.bot").filter(has_text="Triệu Thị Mây")
    await expect(card.get_by_role("img", name="Ảnh 1/1")).to_be_visible(timeout=15000)
    await card.get_by_role("button").first.scroll_into_view_if_needed()
    await expect(card.get_by_role("button").first).to_be_in_viewport()
    code = card.locator(".nowrap").filter(has_text=re.compile(r"^GS-\d{4}-\d{6}$"))
    assert await code.evaluate("span => getComputedStyle(span).whiteSpace") == "nowrap"
    await screenshot(moderator, phone_shot(viewport, "card"))
    await assert_accessible(moderator)


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


async def test_embed_launcher_opens_the_chat(browser: Browser, bot: Runtime) -> None:
    page = await phone_page(browser, bot)  # any page of the site can play the portal
    await page.add_script_tag(url=f"{base_url(bot)}/chat/embed.js")
    launcher = page.get_by_role("button", name="Gương Sáng", exact=True)
    await expect(launcher.locator("svg")).to_be_visible()
    await launcher.click()
    await expect(launcher).to_have_attribute("aria-expanded", "true")
    chat = page.frame_locator("iframe[title='Gương Sáng']")
    await expect(chat.locator("li.msg.bot").last).to_contain_text("Chào mừng")


async def test_a_message_that_cannot_be_saved_goes_back_to_the_input(
    browser: Browser, bot: Runtime
) -> None:
    page = await phone_page(browser, bot)
    await expect(last_bot_message(page)).to_contain_text("Chào mừng")
    composer = page.get_by_role("textbox")
    async with read_only(bot):
        await composer.fill("/help")
        await composer.press("Enter")
        await expect(page.get_by_role("status")).to_contain_text("Chưa lưu được tin nhắn")
        await expect(composer).to_have_value("/help")
    await composer.press("Enter")
    await expect(last_bot_message(page)).to_contain_text("Tôi có thể giúp bạn")
