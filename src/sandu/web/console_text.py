"""The staff console's words: the names of states, actions, roles and fields in Simplified Chinese, and every
`SanduError` put into a Chinese sentence that names the field (and, for a refusal, the rule that refused it).

Presentation only: which error it is, and why, is the service's; this module says it in Chinese and keeps the
service's own message beside it (详情), so nothing the server said is lost in translation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sandu.domain.errors import SanduError

STATE = {
    "draft": "草稿", "authorized": "已授权", "assessed": "已测额", "approved": "已批准", "partially_approved": "部分批准",
    "referred": "待人工审批", "declined": "已拒绝", "accepted": "已签约", "active": "已用款", "withdrawn": "已撤回", "expired": "已过期",
}
ACTION = {
    "open": "创建申请", "authorize": "授权", "assess": "测额", "auto_approve": "系统批准", "auto_partial": "系统先行批准部分额度",
    "refer": "转人工审批", "decline": "系统拒绝", "approve": "批准", "approve_part": "批准（尚有待审批额度）", "accept": "签约",
    "first_draw": "首次用款", "withdraw": "申请人撤回", "expire": "过期", "request_review": "申请人工复核", "uphold": "复核维持拒绝",
    "reassess": "复核后重新测额", "reject": "人工拒绝", "migrated": "迁移补录",
}
ROLE = {"applicant": "申请人", "officer": "客户经理", "approver": "审批人", "risk": "风险管理", "operations": "运营", "admin": "管理员",
        "auditor": "审计"}
OUTCOME = {"approve": "系统批准", "partial": "部分批准、部分转人工", "refer": "转人工审批", "decline": "系统拒绝"}
OFFER_STATUS = {"offered": "可签约", "referred": "待审批", "accepted": "已签约"}
ALERT_STATUS = {"raised": "新预警", "acknowledged": "已知悉", "proposed": "待审批", "approved": "已批准", "rejected": "已否决", "done": "已处置",
                "dismissed": "已撤销"}
ALERT_ACTION = {"review": "复核", "freeze": "冻结额度", "reduce_limit": "调减额度"}
SEVERITY = {"low": "低", "medium": "中", "high": "高", "critical": "严重"}
ALERT_STEP = {"raise": "触发", "acknowledge": "知悉", "propose": "提议", "approve": "批准", "done": "执行", "reject": "否决", "dismiss": "撤销"}
LINE_STATUS = {"active": "正常", "frozen": "已冻结", "expired": "已到期", "closed": "已结清"}
REVIEW_STATUS = {"requested": "待审查", "reviewed": "已审查，待确认", "upheld": "维持拒绝", "reassess": "重新测额", "superseded": "已被新测额取代"}
REVIEW_OUTCOME = {"upheld": "维持拒绝", "reassess": "重新测额"}
BUCKET = {"principal": "正常本金", "due_principal": "到期本金", "overdue_principal": "逾期本金", "interest": "应收利息", "overdue_interest": "逾期利息",
          "penalty": "罚息", "compound": "复利", "interest_accrued": "已计未结利息", "penalty_accrued": "已计未结罚息",
          "compound_accrued": "已计未结复利"}
MOVEMENT = {"draw": "借款", "repayment": "还款", "interest": "结息", "penalty": "罚息", "compound": "复利", "overdue": "转逾期", "migrate": "迁移",
            "prepayment": "提前还款"}
COMPONENT = {"credit_fen": "信用", "collateral_fen": "抵押", "residual_value_fen": "余值", "credit_topup_fen": "信用补充", "project_fen": "项目"}
DUE_KIND = {"unpaid": "已到期未还", "settlement": "结息", "instalment": "分期还款", "maturity": "到期还本"}
RISK_CLASS = {"normal": "正常", "special_mention": "关注", "substandard": "次级", "doubtful": "可疑", "loss": "损失"}
REPLAY_VERSION = {"policy": "策略包", "model": "风险模型", "tech": "科创评价配置"}

FIELD = {
    "opinion": "审查意见", "reason": "拒绝理由", "outcome": "复核结论", "limit_wan": "新额度（万元）", "limit_fen": "新额度", "policy": "策略包",
    "policy_file": "策略包文件", "since": "起始日期", "max_changes": "列出的结果变化笔数", "product": "产品", "application": "申请",
    "application_id": "申请编号", "decision_id": "决策", "decision": "决策", "line_id": "额度编号", "from": "对账单起始日", "to": "对账单截止日",
    "username": "用户名", "password": "密码", "offset": "页码", "limit": "每页笔数", "branch": "支行", "as_of": "业务日期",
    "alert_id": "预警编号", "note": "说明", "action": "处置", "after_id": "页码", "status": "状态",
}
RULE = {
    "maker_checker.reviewer": "审贷分离：审查人不得再审批（或确认）自己审查的业务",
    "maker_checker.initiator": "审贷分离：发起人不得审查、审批或拒绝自己发起的业务",
    "approval.authority": "分级审批：金额超出您本人的审批权限",
    "approval.matrix": "分级审批：金额超出策略审批权限矩阵给该岗位的额度",
    "referrals.branch": "只能查看本支行的待审批队列",
    "maker_checker.proposer": "审贷分离：提议人不得审批或否决自己提议的处置",
    "alerts.branch": "只能查看本支行的预警",
    "web.csrf": "表单安全令牌与当前会话不符，请刷新页面后重试",
    "web.same_origin": "表单必须从本站页面提交",
}
CODE = {
    "invalid_input": "输入不符合要求", "conflict": "当前状态不允许此操作", "not_permitted": "无权执行此操作", "not_found": "不存在，或不在您的权限范围内",
    "not_authenticated": "请重新登录", "reauthentication_required": "请重新输入密码", "too_many_requests": "操作过于频繁，请稍后再试",
    "busy": "系统繁忙，未做任何更改，请稍后重试", "policy_outdated": "现行策略无法在该日期决策，请更新策略包", "consent_denied": "授权不覆盖此操作",
}

# Reasons the services give, as Chinese (the first that matches); the rest fall back to the error's kind.
_REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), zh) for p, zh in (
    (r"must not be empty", "不能为空"),
    (r"has (\d+) characters, more than (\d+)", r"最多 \2 个字符（现有 \1 个）"),
    (r"contains .* at position (\d+)", r"第 \1 个字符是控制字符或不可见字符，请删除"),
    (r"starts or ends with white space", "首尾不能有空格"),
    (r"must be a plain decimal number", "必须是数字，例如 300.50（不带单位和千分位）"),
    (r"thousands separators", "不能含千分位逗号"),
    (r"must not contain surrounding whitespace", "首尾不能有空格"),
    (r"is too long", "太长"),
    (r"must be non-negative", "不能为负数"),
    (r"must be positive", "必须大于零"),
    (r"finer than|decimal places", "最小单位为分（万元最多 6 位小数）"),
    (r"must be at most", "超出允许的最大金额"),
    (r"is not below the line's limit of (\d+) fen", "必须低于现有额度"),
    (r"(\d+) fen is drawn on the line", "不能低于已用本金"),
    (r"was already reviewed", "该产品已审查并提交上级审批，不能重复提交"),
    (r"must be reviewed by an officer before", "须先由客户经理审查（提交上级审批）后才能批准"),
    (r"has nothing left to approve", "该产品没有待审批的额度"),
    (r"was already signed for", "该产品已签约"),
    (r"waits for the human review", "该申请正在人工复核，请在复核栏处理"),
    (r"is (\w+): it cannot (\w+)", "申请当前为「{state}」，不能执行此操作"),
    (r"the human review of decision .* is (\w+)", "人工复核当前为「{review}」，不能执行此操作"),
    (r"not a valid date|YYYY-MM-DD|a day", "必须是日期，格式 YYYY-MM-DD"),
    (r"must be a whole number|must be an integer", "必须是整数"),
))


@dataclass(frozen=True)
class ZhError:
    field: str | None  # the form input the error belongs to
    label: str | None  # the field's Chinese name
    message: str  # the Chinese sentence shown next to the field
    rule: str | None  # the rule that refused it (a refusal), e.g. maker_checker.reviewer
    rule_text: str | None  # the rule in Chinese
    detail: str  # the service's own message, as it said it
    code: str


def _reason(exc: SanduError) -> str | None:
    reason = getattr(exc, "reason", None) or exc.message
    for pattern, zh in _REASONS:
        match = pattern.search(reason)
        if match is None:
            continue
        if "{state}" in zh:
            return zh.format(state=STATE.get(match.group(1), match.group(1)))
        if "{review}" in zh:
            return zh.format(review=REVIEW_STATUS.get(match.group(1), match.group(1)))
        return match.expand(zh)
    return None


def zh_error(exc: SanduError, field: str | None = None) -> ZhError:
    """`exc` in Chinese, shown next to `field` (default: the field the service named)."""
    rule = getattr(exc, "rule", None)
    rule_text = RULE.get(rule or "") or (f"岗位权限表（{rule[6:]}）：您的岗位不能执行此操作" if rule and rule.startswith("authz.") else None)
    where = field or exc.field or None
    label = FIELD.get(where or "") or FIELD.get(exc.field or "")
    head = CODE.get(exc.code, "操作未完成")
    reason = _reason(exc)
    if rule_text:
        message = f"{head}：{rule_text}"
    elif reason and label:
        message = f"{label}{'' if reason.startswith(('不', '必', '最', '首', '第', '超', '太')) else '：'}{reason}"
    elif reason:
        message = reason
    elif label:
        message = f"{label}：{head}"
    else:
        message = head
    return ZhError(field=where, label=label, message=message, rule=rule, rule_text=rule_text, detail=exc.message, code=exc.code)
