//! The knowledge base (知识库): [`KnowledgeBase`].

use crate::crm::Crm;
use crate::*;
use guanxi_core::service::*;

/// The knowledge base (知识库): articles, their search, and suggestions for a ticket.
///
/// Got from [`Crm`] as `crm.kb()`; each call takes the acting user and is checked, validated,
/// written, logged and announced exactly as the rest of the facade is.
///
/// ```
/// # use guanxi::*;
/// # use guanxi::service::*;
/// let crm = Crm::in_memory();
/// let alice = Actor::user("alice")?;
/// crm.kb().create(&alice, NewArticle::new("如何重置密码", "在登录页点击“忘记密码”。"))?;
/// assert_eq!(crm.kb().search(&alice, &KbQuery::new("密码"))?.len(), 1);
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct KnowledgeBase<'a> {
    pub(crate) crm: &'a Crm,
}

impl std::fmt::Debug for KnowledgeBase<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KnowledgeBase")
    }
}

impl<'a> KnowledgeBase<'a> {
    /// Adds an article to the knowledge base.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::service::*;
    /// let crm = Crm::in_memory();
    /// let admin = Actor::user("admin")?;
    /// crm.kb().create(&admin, NewArticle::new("如何申请退款", "在订单详情页点击申请退款，三个工作日内到账。").tag("退款"))?;
    /// crm.kb().create(&admin, NewArticle::new("Reset your password", "Use the forgot-password link on the login page."))?;
    /// let hits = crm.kb().search(&admin, &KbQuery::new("退款"))?;
    /// assert_eq!(hits[0].article.title, "如何申请退款");
    /// assert_eq!(crm.kb().search(&admin, &KbQuery::new("PASSWORD login"))?.len(), 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn create(&self, actor: &Actor, input: NewArticle) -> Result<Article> {
        self.crm.create_article(actor, input)
    }

    /// Replaces an article's content.
    pub fn update(&self, actor: &Actor, id: ArticleId, expected_version: u64, input: NewArticle) -> Result<Article> {
        self.crm.update_article(actor, id, expected_version, input)
    }

    /// An article by id (an unpublished one only for those who may edit articles).
    pub fn get(&self, actor: &Actor, id: ArticleId) -> Result<Article> {
        self.crm.article(actor, id)
    }

    /// Ranked knowledge-base search (see [`KbQuery`]; unpublished articles only for those who
    /// may edit articles).
    pub fn search(&self, actor: &Actor, query: &KbQuery) -> Result<Vec<ArticleHit>> {
        self.crm.search_articles(actor, query)
    }

    /// Published articles that may answer a ticket: its subject and description as an
    /// any-term query.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::service::*;
    /// let crm = Crm::in_memory();
    /// let admin = Actor::user("admin")?;
    /// crm.kb().create(&admin, NewArticle::new("发票重开流程", "发票抬头错误可申请重开发票。"))?;
    /// crm.kb().create(&admin, NewArticle::new("物流查询", "在订单页查看快递单号。"))?;
    /// let t = crm.service().tickets().create(&admin, NewTicket::new("发票抬头写错了", TicketKind::Inquiry, Priority::Low))?;
    /// let s = crm.kb().suggest(&admin, t.id, 3)?;
    /// assert_eq!(s[0].article.title, "发票重开流程");
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn suggest(&self, actor: &Actor, ticket: TicketId, limit: usize) -> Result<Vec<ArticleHit>> {
        self.crm.suggest_articles(actor, ticket, limit)
    }
}
