"""Technology certifications an enterprise can hold (as named by the issuers)."""

CERT_GAOXIN = "高新技术企业"  # national high-tech enterprise
CERT_ZHUANJINGTEXIN = "专精特新"  # (provincial) specialised, refined, distinctive, innovative SME
CERT_XIAOJUREN = "小巨人"  # national 专精特新 "little giant"
CERT_KEJIXING = "科技型中小企业"  # MOST tech-based SME
CERTIFICATIONS = (CERT_GAOXIN, CERT_ZHUANJINGTEXIN, CERT_XIAOJUREN, CERT_KEJIXING)
