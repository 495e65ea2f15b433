"""The console's pages as a marketer and an admin use them, in Chromium."""

from __future__ import annotations

import re
from datetime import date, timedelta

from playwright.sync_api import Page, expect

from tests.browser.conftest import DemoConsole, screenshot


def test_overview_draws_its_plots_from_the_demo_history(admin_page: Page) -> None:
    page = admin_page
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    plots = page.locator("figure.plot svg")
    expect(plots).to_have_count(5)
    # Lines were drawn from data: every time series has a polyline with points.
    assert page.locator("figure.plot svg polyline").count() >= 3
    assert int(page.locator("#members-total").inner_text().replace(",", "")) > 0
    screenshot(page, "overview")
    page.get_by_role("link", name="365 days").click()
    expect(page.get_by_role("img", name=re.compile("last 365 days")).first).to_be_visible()


def test_a_member_found_by_email_shows_traits_and_a_timeline_filtered_by_phase(
    marketer_page: Page, demo_console: DemoConsole
) -> None:
    page = marketer_page
    page.get_by_role("link", name="Members").click()
    page.get_by_label("Card number or email").fill(demo_console.varied_member_email)
    page.get_by_role("button", name="Search").click()
    page.locator("table a").first.click()
    expect(page.get_by_role("heading", name=re.compile("Health score"))).to_be_visible()
    expect(page.locator("table.components tbody tr")).to_have_count(4)
    expect(page.locator("#timeline")).to_be_visible()
    screenshot(page, "member")
    # Unfiltered, the timeline is grouped under more than one phase, one of them "buy".
    expect(page.locator("#timeline h3.phase-buy")).to_have_count(1)
    assert page.locator("#timeline h3.phase").count() > 1
    # Filtering swaps the timeline in place (htmx) and leaves only the chosen phase.
    with page.expect_response(re.compile(r"phase=buy")):
        page.get_by_label("Phase").select_option("buy")
    expect(page.locator("#timeline h3:not(.phase-buy)")).to_have_count(0)
    expect(page.locator("#timeline h3.phase-buy")).to_have_count(1)


def test_a_segment_shows_its_live_size_and_a_sample(marketer_page: Page) -> None:
    page = marketer_page
    page.goto("/console/segments")
    page.get_by_role("button", name="Count members").click()
    everyone = int(page.locator("#segment-size").inner_text().replace(",", ""))
    assert everyone > 0
    page.get_by_label("new", exact=True).check()  # a change recounts without a click
    expect(page.locator("#segment-size")).not_to_have_text(str(everyone))
    newcomers = int(page.locator("#segment-size").inner_text().replace(",", ""))
    assert 0 < newcomers < everyone
    expect(page.locator("#estimate table tbody tr")).not_to_have_count(0)
    screenshot(page, "segments")


def test_a_campaign_is_created_scheduled_listed_and_cancelled(marketer_page: Page) -> None:
    page = marketer_page
    page.goto("/console/campaigns/new")
    page.get_by_label("Name").fill("Winter linen browser test")
    page.locator("[name='variants[0].title']").fill("Linen week")
    page.locator("[name='variants[0].body']").fill("{display_name}, 100 bonus points on linen")
    page.locator("[name='schedule.kind']").select_option("local_time")
    page.locator("[name='schedule.date']").fill((date.today() + timedelta(days=30)).isoformat())
    page.locator("[name='schedule.time']").fill("10:00")
    page.get_by_label("at_risk").first.check()
    screenshot(page, "campaign-new")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator("#campaign-state")).to_have_text("draft")
    page.get_by_role("button", name="Schedule").click()
    expect(page.locator("#campaign-state")).to_have_text("scheduled")
    page.get_by_role("link", name="Campaigns").click()
    row = page.locator("#campaigns tr", has_text="Winter linen browser test")
    expect(row).to_contain_text("scheduled")
    row.get_by_role("link").click()
    page.get_by_role("button", name="Cancel campaign").click()
    expect(page.locator("#campaign-state")).to_have_text("cancelled")


def test_a_campaign_form_error_shows_the_api_problem_code_inline(marketer_page: Page) -> None:
    page = marketer_page
    page.goto("/console/campaigns/new")
    page.get_by_label("Name").fill("A dangerous link")
    page.locator("[name='variants[0].title']").fill("Hello")
    page.locator("[name='variants[0].body']").fill("Body")
    page.get_by_label("Deep link").fill("javascript:alert(1)")  # the browser lets it through; we do not
    page.get_by_role("button", name="Save draft").click()
    problem = page.locator("#problem")
    expect(problem).to_contain_text("validation_failed")
    expect(problem).to_contain_text("deep_link")
    expect(page.get_by_label("Name")).to_have_value("A dangerous link")  # what was typed is kept


def test_past_campaign_report_shows_plots(marketer_page: Page) -> None:
    page = marketer_page
    page.goto("/console/campaigns")
    page.locator("#campaigns tbody tr a").last.click()
    expect(page.locator("table.report tbody tr").first).to_be_visible()
    screenshot(page, "campaign-report")


def test_an_offer_is_edited_and_paused(marketer_page: Page) -> None:
    page = marketer_page
    page.get_by_role("link", name="Offers").click()
    expect(page.locator("#probabilities svg")).to_be_visible()
    screenshot(page, "offers")
    # The demo's past offers have ended; an active one can be paused.
    page.locator("#offers tbody tr", has=page.locator(".state-active")).first.get_by_role("link").click()
    page.get_by_label("Title (shown in the app)").fill("Edited in the browser")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_label("Title (shown in the app)")).to_have_value("Edited in the browser")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#offer-state")).to_have_text("paused")
    page.get_by_role("button", name="Activate").click()
    expect(page.locator("#offer-state")).to_have_text("active")


def test_admin_edits_a_store_fence_and_sees_a_new_terminal_secret_once(admin_page: Page) -> None:
    page = admin_page
    page.get_by_role("link", name="Stores").click()
    screenshot(page, "stores")
    page.locator("#stores tbody tr a").first.click()
    page.get_by_label("Circle radius").fill("150")
    page.locator("[name='hours.mon']").fill("10:00-21:00")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_label("Circle radius")).to_have_value("150")
    expect(page.locator("[name='hours.mon']")).to_have_value("10:00-21:00")
    page.get_by_label("New terminal").fill("レジ9")
    page.get_by_role("button", name="Create terminal").click()
    expect(page.locator("#terminal-secret")).not_to_be_empty()
    page.get_by_role("link", name="Back to the store").click()
    expect(page.locator("#terminals")).to_contain_text("レジ9")
    assert page.locator("#terminal-secret").count() == 0  # shown once, never again
    page.goto("/console/fraud")
    screenshot(page, "fraud-review")


def test_a_marketer_cannot_reach_admin_pages(marketer_page: Page) -> None:
    page = marketer_page
    expect(page.get_by_role("link", name="Stores")).to_have_count(0)
    response = page.goto("/console/stores")
    assert response is not None
    assert response.status == 403
    expect(page.locator(".problem")).to_contain_text("staff_role_required")
    forged = page.request.post("/console/stores", form={"code": "HACK-1"})
    assert forged.status == 403


def test_a_form_without_its_csrf_token_is_refused(marketer_page: Page) -> None:
    page = marketer_page
    page.goto("/console/campaigns")
    before = page.locator("#campaigns tbody tr").count()
    # The session cookie goes along (same browser), but the form's token does not.
    response = page.request.post(
        "/console/campaigns",
        form={"name": "Forged", "variants[0].key": "A", "variants[0].title": "x", "variants[0].body": "y"},
    )
    assert response.status == 403
    assert "csrf_token_invalid" in response.text()
    page.reload()
    expect(page.locator("#campaigns tbody tr")).to_have_count(before)


def test_signed_out_visitors_are_sent_to_log_in(page: Page) -> None:
    page.goto("/console/members")
    expect(page).to_have_url(re.compile(r"/console/login$"))
    page.get_by_label("Email").fill("marketer@demo.tsunagari.jp")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".problem")).to_contain_text("invalid_credentials")
    screenshot(page, "login")
